//! The host is down, changed its host key, or dies mid-session: the user gets exit 255 and a
//! message that starts with `ec2-ssh-proxy:` and says why. Both modes.
#[macro_use]
mod common;

use common::*;
use std::time::Duration;

/// `dial` points at a closed port: exit 255, "ec2-ssh-proxy: ... connection refused ...".
fn upstream_down_is_explained(mode: Mode) {
    let down = ClosedPort::new();
    let closed = down.port;
    let w = World::builder()
        .host("down-1", &format!("127.0.0.1:{closed}"))
        .start();
    let out = w
        .ssh_info(mode)
        .args([&w.dest_for("down-1"), "echo SHOULD-NOT-RUN"])
        .timeout(30)
        .run();
    out.assert_code(255)
        .assert_stderr_contains("ec2-ssh-proxy:")
        .assert_stderr_contains_ci("refused");
    assert!(
        !out.stdout_text().contains("SHOULD-NOT-RUN"),
        "{}",
        out.report()
    );
}

/// The sshd restarts with a new host key: the pinned key no longer matches, the next connection
/// is refused with both SHA256 fingerprints and the pin file's location; it stays refused.
fn upstream_host_key_change_is_refused(mode: Mode) {
    let mut w = World::start();
    w.ssh(mode).args([&w.dest(), "true"]).run().assert_success();
    let old_fp = w.sshd.host_key_fingerprint();
    w.sshd.restart_with_new_host_key();
    let new_fp = w.sshd.host_key_fingerprint();
    assert_ne!(old_fp, new_fp);
    for attempt in 1..=2 {
        let out = w
            .ssh_info(mode)
            .args([&w.dest(), "echo SHOULD-NOT-RUN"])
            .run();
        out.assert_code(255)
            .assert_stderr_contains("ec2-ssh-proxy:")
            .assert_stderr_contains(&old_fp)
            .assert_stderr_contains(&new_fp)
            .assert_stderr_contains(&w.proxy.state_dir.display().to_string());
        assert!(
            !out.stdout_text().contains("SHOULD-NOT-RUN"),
            "attempt {attempt}\n{}",
            out.report()
        );
    }
    // The diagnostic log says the same: the verdict, and which line of which file to delete.
    let record = common::seed::last_record(&w);
    assert_eq!(record["verdict"], "host-key-changed", "{record:#}");
    let fixes = record["fixes"].to_string();
    let pins = w.proxy.state_dir.join("pinned_host_keys");
    assert!(
        fixes.contains("delete the line for '")
            && fixes.contains(&format!("' from {}", pins.display())),
        "{record:#}"
    );
}

/// The upstream connection dies during `sleep 30` (sshd's session processes are SIGKILLed):
/// the client exits 255 within a few seconds instead of hanging.
fn upstream_dropping_mid_session_ends_client(mode: Mode) {
    let w = World::start();
    let running = w
        .ssh_info(mode)
        .args([&w.dest(), "sleep 30; echo SHOULD-NOT-PRINT"])
        .timeout(60)
        .spawn();
    assert!(
        w.sshd
            .wait_for_session_process("sleep 30", Duration::from_secs(20)),
        "the session never started on the sshd; ssh stderr: {}\n{}",
        running.stderr_so_far(),
        w.diagnostics()
    );
    w.sshd.kill_sessions();
    let out = running.wait_for(Duration::from_secs(10));
    out.assert_code(255);
    assert!(
        !out.stdout_text().contains("SHOULD-NOT-PRINT"),
        "{}",
        out.report()
    );
}

both_modes!(
    upstream_down_is_explained,
    upstream_host_key_change_is_refused,
    upstream_dropping_mid_session_ends_client,
);

/// No keyring key is accepted for the login user (it does not exist upstream) but the
/// expected key works for the AMI's default user: the client gets exit 255 and the proxy's
/// reason (verdict wrong-user), naming the user, the host, the key it tried and the user
/// that would work; the proxy never logs in as that other user.
fn upstream_login_refusal_is_explained(mode: Mode) {
    let w = World::start();
    let out = w
        .ssh_info(mode)
        .args([
            &w.dest_for("web-1").replace(&w.user, "nosuchuser"),
            "echo SHOULD-NOT-RUN",
        ])
        .timeout(30)
        .run();
    out.assert_code(255)
        .assert_stderr_contains("ec2-ssh-proxy: Permission denied (publickey) for nosuchuser@web-1")
        .assert_stderr_contains("accepted for user 'ec2-user'")
        .assert_stderr_contains(&fingerprint(&w.upstream_key));
    // The whole paragraph reaches the terminal (on the session's stderr), not the
    // 400-character cut of a disconnect message.
    let whole = out
        .stderr
        .lines()
        .find(|l| l.starts_with("ec2-ssh-proxy: Permission denied"));
    assert!(
        whole.is_some_and(|l| l.len() > 400 && l.ends_with("Details: ec2-ssh-proxy log --last 1")),
        "{}",
        out.report()
    );
    assert!(
        !w.sshd.log().contains("Accepted publickey for ec2-user"),
        "{}",
        w.sshd.log()
    );
    assert!(
        !out.stdout_text().contains("SHOULD-NOT-RUN"),
        "{}",
        out.report()
    );
}
both_modes!(upstream_login_refusal_is_explained);

/// A client that opens no session (`ssh -N`) still hears why: the connection closes with
/// the explanation as its disconnect message, within a few seconds.
fn refusal_without_a_session_is_still_explained(mode: Mode) {
    let w = World::start();
    let out = w
        .ssh_info(mode)
        .args(["-N", &w.dest_for("web-1").replace(&w.user, "nosuchuser")])
        .timeout(20)
        .run();
    out.assert_code(255)
        .assert_stderr_contains("Received disconnect")
        .assert_stderr_contains(
            "ec2-ssh-proxy: Permission denied (publickey) for nosuchuser@web-1",
        );
    assert!(
        out.elapsed < std::time::Duration::from_secs(10),
        "{}",
        out.report()
    );
}
both_modes!(refusal_without_a_session_is_still_explained);
