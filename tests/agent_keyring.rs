//! Keys the proxy signs with through ssh-agent: an encrypted key file in the keyring is
//! used when the agent holds it (the passphrase never reaches the proxy), and skipped with
//! the reason when it does not.
mod common;

use common::*;
use std::process::Command;

/// An ed25519 key encrypted with a passphrase.
fn encrypted_key(path: &std::path::Path) -> String {
    let status = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "secret-passphrase",
            "-C",
            "encrypted",
            "-f",
        ])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read_to_string(pub_path(path)).unwrap()
}

#[test]
fn an_encrypted_keyring_key_signs_through_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("locked");
    let public = encrypted_key(&key);
    let agent = Agent::start(dir.path());
    // ssh-add would prompt for the passphrase: load an unencrypted copy instead, as a user
    // who typed it once would have.
    let plain = dir.path().join("unlocked");
    std::fs::copy(&key, &plain).unwrap();
    let status = Command::new("ssh-keygen")
        .args(["-q", "-p", "-P", "secret-passphrase", "-N", "", "-f"])
        .arg(&plain)
        .status()
        .unwrap();
    assert!(status.success());
    agent.add(&plain);
    let w = World::builder()
        .authorized(&[public])
        .keyring_key("locked", &key)
        .env(&[(
            "SSH_AUTH_SOCK".to_string(),
            agent.sock.display().to_string(),
        )])
        .start();
    w.ssh(Mode::Jump)
        .args([&w.dest(), "echo via-agent"])
        .timeout(30)
        .run()
        .assert_success()
        .assert_stdout("via-agent\n");
    let out = std::process::Command::new(proxy_bin())
        .args(["--config"])
        .arg(w.path("proxy.toml"))
        .arg("--state-dir")
        .arg(w.path("state"))
        .args(["keyring", "list"])
        .env("SSH_AUTH_SOCK", &agent.sock)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("(signs via ssh-agent)"), "{listing}");
}

#[test]
fn an_encrypted_key_without_the_agent_is_skipped_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("locked");
    let public = encrypted_key(&key);
    let w = World::builder()
        .authorized(&[public])
        .keyring_key("locked", &key)
        .start();
    let out = w
        .ssh_info(Mode::Jump)
        .args([&w.dest(), "echo SHOULD-NOT-RUN"])
        .timeout(30)
        .run();
    out.assert_code(255)
        .assert_stderr_contains("ec2-ssh-proxy: Permission denied (publickey)");
    let listing = std::process::Command::new(proxy_bin())
        .args(["--config"])
        .arg(w.path("proxy.toml"))
        .arg("--state-dir")
        .arg(w.path("state"))
        .args(["keyring", "list"])
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&listing.stdout);
    assert!(
        text.contains("encrypted with a passphrase and not loaded in ssh-agent"),
        "{text}"
    );
}
