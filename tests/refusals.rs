//! What the jump server refuses: unknown client keys, destinations that are not configured
//! hosts. Jump mode only (ProxyCommand mode has no jump hop).
#[macro_use]
mod common;

use common::*;

/// A key not listed in `client_keys` cannot use the jump host: Permission denied, exit 255,
/// and the upstream sshd is never logged in to.
#[test]
fn client_key_not_in_client_keys_is_refused() {
    let w = World::start();
    let cfg = w.path("ssh_config_stranger");
    w.write_ssh_config(&cfg, &w.stranger_key, "INFO");
    let out = w
        .ssh_with_config(Mode::Jump, &cfg)
        .args([&w.dest(), "echo SHOULD-NOT-RUN"])
        .run();
    out.assert_code(255)
        .assert_stderr_contains("Permission denied");
    assert!(
        !out.stdout_text().contains("SHOULD-NOT-RUN"),
        "{}",
        out.report()
    );
    assert!(
        !w.sshd.log().contains("Accepted publickey"),
        "the proxy logged in upstream for a refused client:\n{}",
        w.sshd.log()
    );
}

/// `ssh -J proxy root@unknown-host`: channel open failure "administratively prohibited: ...not a
/// known host...", exit 255.
#[test]
fn unknown_destination_host_is_refused() {
    let w = World::start();
    let out = w
        .ssh_info(Mode::Jump)
        .args([&w.dest_for("unknown-host"), "echo SHOULD-NOT-RUN"])
        .run();
    out.assert_code(255)
        .assert_stderr_contains("administratively prohibited")
        .assert_stderr_contains("not a known host");
    assert!(
        !out.stdout_text().contains("SHOULD-NOT-RUN"),
        "{}",
        out.report()
    );
}

/// `ssh -W 127.0.0.1:6379 -p PROXYPORT root@127.0.0.1`: the jump server is not an open TCP
/// relay to arbitrary addresses.
#[test]
fn arbitrary_tcp_destination_is_refused() {
    let w = World::start();
    let out = w
        .ssh_no_mode(&w.ssh_config_info)
        .args([
            "-W",
            "127.0.0.1:6379",
            "-p",
            &w.proxy.port.to_string(),
            &format!("{}@127.0.0.1", w.user),
        ])
        .run();
    out.assert_code(255)
        .assert_stderr_contains("administratively prohibited")
        .assert_stderr_contains("not a known host");
    assert!(out.stdout.is_empty(), "{}", out.report());
}

/// The jump server refuses a shell/exec session of its own (it is only a jump host).
#[test]
fn jump_server_itself_gives_no_shell() {
    let w = World::start();
    let out = w
        .ssh_no_mode(&w.ssh_config_info)
        .args([
            "-p",
            &w.proxy.port.to_string(),
            &format!("{}@127.0.0.1", w.user),
            "echo SHOULD-NOT-RUN",
        ])
        .run();
    assert_ne!(out.code(), 0, "{}", out.report());
    assert!(
        !out.stdout_text().contains("SHOULD-NOT-RUN"),
        "{}",
        out.report()
    );
}
