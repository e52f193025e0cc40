//! The seed's story end to end: an instance in account 222222222222 launched with key pair
//! `new-key` from an AMI that account 111111111111 made from an instance launched with
//! `old-key`; the instance (a real sshd on its loopback address) still holds only old-key.
//! The user connects as usual; the proxy's expected key is refused, it finds old-key
//! through the AMI's lineage, logs in with it, and says so.
#[macro_use]
mod common;

use common::seed::{records, seed};
use common::*;

fn exec_runs_with_the_original_key_and_stays_byte_clean(mode: Mode) {
    let s = seed();
    let port = s.w.sshd.port.to_string();
    let out =
        s.w.ssh(mode)
            .args(["-p", &port, &s.w.dest_for(&s.id), "echo hello; id -un"])
            .timeout(60)
            .run();
    out.assert_success();
    // Nothing added to a non-interactive session's output.
    assert_eq!(
        out.stdout,
        format!("hello\n{}\n", s.w.user).into_bytes(),
        "{}",
        out.report()
    );
    let records = records(&s.w);
    let last = records
        .last()
        .unwrap_or_else(|| panic!("no diagnostic record{}", s.w.diagnostics()));
    assert_eq!(last["verdict"], "ami-baked-key", "{last:#}");
    let attempts = last["attempts"].to_string();
    assert!(
        attempts.contains(&s.new_fp),
        "new-key's refusal not recorded: {last:#}"
    );
    assert!(
        attempts.contains(&s.old_fp),
        "old-key's acceptance not recorded: {last:#}"
    );
    assert_eq!(last["instance_id"], s.id.as_str(), "{last:#}");
}
both_modes!(exec_runs_with_the_original_key_and_stays_byte_clean);

fn an_interactive_session_is_told_before_the_shell(mode: Mode) {
    let s = seed();
    let port = s.w.sshd.port.to_string();
    let out =
        s.w.ssh(mode)
            .args(["-tt", "-p", &port, &s.w.dest_for(&s.id), "echo in-shell"])
            .timeout(60)
            .run();
    out.assert_success();
    let text = out.stdout_text();
    let notice = text.find("ec2-ssh-proxy: key pair 'new-key' was refused by");
    let shell = text.find("in-shell");
    assert!(
        notice.is_some() && shell.is_some() && notice < shell,
        "{}",
        out.report()
    );
    assert!(
        text.contains("ec2-ssh-proxy log --last 1"),
        "{}",
        out.report()
    );
}
both_modes!(an_interactive_session_is_told_before_the_shell);

/// The second connection tries the key that worked first: one attempt, no probe.
#[test]
fn the_next_connection_uses_the_remembered_key() {
    let s = seed();
    let port = s.w.sshd.port.to_string();
    for _ in 0..2 {
        s.w.ssh(Mode::Jump)
            .args(["-p", &port, &s.w.dest_for(&s.id), "true"])
            .timeout(60)
            .run()
            .assert_success();
    }
    let records = records(&s.w);
    assert_eq!(records.len(), 2, "{records:#?}");
    let second = &records[1];
    // What made old-key the winner came along: the same verdict, with no EC2 call.
    assert_eq!(second["verdict"], "ami-baked-key", "{second:#}");
    assert_eq!(
        second["attempts"].as_array().map(Vec::len),
        Some(1),
        "{second:#}"
    );
    assert!(
        second["attempts"].to_string().contains(&s.old_fp),
        "{second:#}"
    );
}

/// The remembered key stops working (the instance now holds only new-key): it is dropped,
/// the plan runs again, the launch key pair's key logs in, and the verdict is ok.
#[test]
fn a_remembered_key_that_stops_working_is_dropped() {
    let s = seed();
    let port = s.w.sshd.port.to_string();
    let connect = || {
        s.w.ssh(Mode::ProxyCommand)
            .args(["-p", &port, &s.w.dest_for(&s.id), "echo ok"])
            .timeout(60)
            .run()
    };
    connect().assert_success();
    let new_pub = std::fs::read_to_string(pub_path(&s.w.path("keyring/new-key.pem")))
        .unwrap_or_else(|_| {
            let out = std::process::Command::new("ssh-keygen")
                .arg("-y")
                .arg("-f")
                .arg(s.w.path("keyring/new-key.pem"))
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap()
        });
    std::fs::write(&s.w.sshd.authorized_keys, new_pub).unwrap();
    connect().assert_success().assert_stdout("ok\n");
    let last = records(&s.w).pop().unwrap();
    assert_eq!(last["verdict"], "ok", "{last:#}");
    let attempts = last["attempts"].as_array().unwrap();
    assert_eq!(attempts[0]["source"], "cached-winner", "{last:#}");
    assert_eq!(attempts[0]["result"], "refused", "{last:#}");
    assert!(
        attempts
            .iter()
            .any(|a| a["fingerprint"] == s.new_fp.as_str() && a["result"] == "accepted"),
        "{last:#}"
    );
}
