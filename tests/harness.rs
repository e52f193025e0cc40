//! Checks the test environment itself (no proxy involved): if these fail, fix the machine
//! (`apt-get install -y openssh-server`), not the proxy.
#[macro_use]
mod common;

use common::*;
use std::time::Duration;

/// Plain OpenSSH ssh -> sshd with the keyring key works; the fixture restarts with a new key.
#[test]
fn sshd_fixture_accepts_keyring_key_and_restarts_with_new_host_key() {
    require_openssh();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    let pubkey = keygen(&key, "harness");
    let mut sshd = Sshd::start(&[pubkey]);
    let ssh = |sshd: &Sshd| {
        let mut c = plain_ssh(sshd, &key, &login_user());
        c.arg("echo ok; exit 7");
        Cmd::from_command(c, format!("\0{}", sshd.log_path.display()))
            .timeout(20)
            .run()
    };
    let out = ssh(&sshd);
    out.assert_code(7).assert_stdout("ok\n");
    assert!(
        sshd.log().contains("Accepted publickey"),
        "sshd log:\n{}",
        sshd.log()
    );
    let old = sshd.host_key_fingerprint();
    sshd.restart_with_new_host_key();
    assert_ne!(old, sshd.host_key_fingerprint());
    ssh(&sshd).assert_code(7);
}

#[test]
fn sshd_fixture_kill_sessions_drops_a_running_session() {
    require_openssh();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    let sshd = Sshd::start(&[keygen(&key, "harness")]);
    let mut c = plain_ssh(&sshd, &key, &login_user());
    c.arg("sleep 31");
    let running = Cmd::from_command(c, String::new()).timeout(60).spawn();
    assert!(sshd.wait_for_session_process("sleep 31", Duration::from_secs(15)));
    sshd.kill_sessions();
    let out = running.wait_for(Duration::from_secs(10));
    out.assert_code(255);
}
