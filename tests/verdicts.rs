//! The verdicts a user meets end to end (issue 4, "Tests"): a long keyring where the
//! accepted key comes last, and the failures the proxy must explain: no-accepted-key,
//! private-key-missing, instance-not-running, unreachable, aws-error. Real sshd, real ssh,
//! moto as the EC2 API where EC2 matters.
#[macro_use]
mod common;

use std::path::Path;

use common::seed::{last_record, proxy_cmd, seed_world};
use common::*;
use serde_json::Value;

fn attempts_of(record: &Value) -> Vec<Value> {
    record["attempts"].as_array().cloned().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// 1. Twelve keys, the accepted one last
// ---------------------------------------------------------------------------------------------

#[test]
fn twelve_keys_with_the_accepted_one_last() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = World::builder();
    for i in 0..11 {
        let name = format!("a{i:02}-key");
        let path = dir.path().join(&name);
        keygen(&path, &name);
        b = b.keyring_key(&name, &path);
    }
    let held = dir.path().join("z-held");
    let held_pub = keygen(&held, "z-held");
    let held_fp = fingerprint(&held);
    let w = b
        .keyring_key("z-held", &held)
        .authorized(&[held_pub])
        .start();

    let out = w
        .ssh(Mode::Jump)
        .args(["-p", &w.sshd.port.to_string(), &w.dest(), "echo ok"])
        .timeout(60)
        .run();
    out.assert_success().assert_stdout("ok\n");

    let sshd_log = w.sshd.log();
    assert!(
        !sshd_log.contains("Too many authentication failures")
            && !sshd_log.contains("maximum authentication attempts exceeded"),
        "sshd saw too many authentication failures:\n{}",
        tail(&sshd_log, 6000)
    );
    let record = last_record(&w);
    let attempts = attempts_of(&record);
    assert!(
        attempts
            .iter()
            .any(|a| a["fingerprint"] == held_fp.as_str() && a["result"] == "accepted"),
        "z-held ({held_fp}) not recorded as accepted: {record:#}"
    );
    let refused = attempts.iter().filter(|a| a["result"] == "refused").count();
    assert!(
        refused >= 11,
        "expected the 11 (+1) keys sorting before z-held to be refused first, got {refused}: {record:#}"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. no-accepted-key, explained to the client
// ---------------------------------------------------------------------------------------------

fn no_accepted_key_is_explained_to_the_client(mode: Mode) {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("foreign");
    let foreign_pub = keygen(&foreign, "foreign");
    let w = World::builder().authorized(&[foreign_pub]).start();
    let out = w
        .ssh_info(mode)
        .args([
            "-p",
            &w.sshd.port.to_string(),
            &w.dest(),
            "echo should-not-run",
        ])
        .timeout(60)
        .run();
    out.assert_code(255)
        .assert_stderr_contains("ec2-ssh-proxy: Permission denied (publickey)");
    assert!(
        !out.stdout_text().contains("should-not-run"),
        "{}",
        out.report()
    );
    let record = last_record(&w);
    assert_eq!(
        record["verdict"],
        "no-accepted-key",
        "{record:#}\n{}",
        out.report()
    );
    assert!(
        !attempts_of(&record)
            .iter()
            .any(|a| a["result"] == "accepted"),
        "{record:#}"
    );
}
both_modes!(no_accepted_key_is_explained_to_the_client);

// ---------------------------------------------------------------------------------------------
// 3. private-key-missing
// ---------------------------------------------------------------------------------------------

fn private_key_missing(mode: Mode) {
    let e = seed_world(&["new-key"], &["old-key"]);
    let w = &e.w;
    let id = e.scenario.instance("web-1");
    let out = w
        .ssh_info(mode)
        .args(["-p", &w.sshd.port.to_string(), &w.dest_for(&id), "true"])
        .timeout(60)
        .run();
    out.assert_code(255)
        .assert_stderr_contains("ec2-ssh-proxy: Permission denied (publickey)")
        .assert_stderr_contains("'old-key'");
    let record = last_record(w);
    assert_eq!(
        record["verdict"],
        "private-key-missing",
        "{record:#}\n{}",
        out.report()
    );
    assert!(
        attempts_of(&record)
            .iter()
            .any(|a| a["fingerprint"] == e.old_fp.as_str() && a["result"] == "accepted"),
        "old-key's acceptance (by query) not recorded: {record:#}"
    );
}
both_modes!(private_key_missing);

// ---------------------------------------------------------------------------------------------
// 4. instance-not-running
// ---------------------------------------------------------------------------------------------

fn instance_not_running(mode: Mode) {
    let e = seed_world(&["old-key", "new-key"], &["old-key"]);
    let w = &e.w;
    let id = e.scenario.instance("stopped-1");
    let port = w.sshd.port.to_string();
    let out = w
        .ssh_info(mode)
        .args(["-p", &port, &w.dest_for(&id), "true"])
        .timeout(60)
        .run();
    out.assert_code(255).assert_stderr_contains_ci("stopped");

    let dest = w.dest_for(&id);
    let diag = proxy_cmd(w, &["diagnose", &dest, "-p", &port]);
    diag.assert_code(1)
        .assert_stdout_contains("instance-not-running");
    assert!(diag.stdout_text().contains(&id), "{}", diag.report());
}
both_modes!(instance_not_running);

// ---------------------------------------------------------------------------------------------
// 5. unreachable
// ---------------------------------------------------------------------------------------------

#[test]
fn unreachable() {
    let down = ClosedPort::new();
    let closed = down.port;
    let w = World::builder()
        .host("closed-host", &format!("127.0.0.1:{closed}"))
        .start();
    let dest = w.dest_for("closed-host");
    let out = proxy_cmd(&w, &["diagnose", &dest, "-p", &closed.to_string()]);
    out.assert_code(1)
        .assert_stdout_contains("verdict unreachable");
    let record = last_record(&w);
    assert_eq!(
        record["verdict"],
        "unreachable",
        "{record:#}\n{}",
        out.report()
    );
    assert_eq!(record["mode"], "diagnose", "{record:#}");
}

// ---------------------------------------------------------------------------------------------
// 6. aws-error: the EC2 endpoint is down
// ---------------------------------------------------------------------------------------------

/// AWS settings that point every EC2 call at `down`.
fn aws_down_env(dir: &Path, down: &ClosedPort) -> Vec<(String, String)> {
    let endpoint = format!("http://127.0.0.1:{}", down.port);
    let config = dir.join("aws-config");
    let credentials = dir.join("aws-credentials");
    std::fs::write(
        &config,
        format!("[default]\nregion = us-east-1\nendpoint_url = {endpoint}\n"),
    )
    .unwrap();
    std::fs::write(
        &credentials,
        "[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = secret\n",
    )
    .unwrap();
    vec![
        ("AWS_CONFIG_FILE".into(), config.display().to_string()),
        (
            "AWS_SHARED_CREDENTIALS_FILE".into(),
            credentials.display().to_string(),
        ),
        ("AWS_ENDPOINT_URL".into(), endpoint),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("AWS_PROFILE".into(), "default".into()),
    ]
}

/// A world whose inventory is EC2 but whose EC2 endpoint is down; the sshd (reached by
/// its address, which connect mode dials as typed) authorizes `authorized`.
fn aws_down_world(dir: &Path, down: &ClosedPort, held: &Path, authorized: String) -> World {
    World::builder()
        .keyring_key("held-key", held)
        .authorized(&[authorized])
        .config("inventory = \"aws\"\nregions = [\"us-east-1\"]\naddress = \"private\"")
        .env(&aws_down_env(dir, down))
        .start()
}

/// True when the record tells the user the EC2 lookup failed (fingerprints and paths,
/// which may spell anything, left out).
fn notes_the_aws_failure(record: &Value) -> bool {
    let explanation: Vec<&str> = record["explanation"]
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .filter(|w| !w.contains("SHA256:") && !w.contains('/'))
        .collect();
    let explanation = explanation.join(" ");
    ["AWS", "look up", "lookup", "inventory", "EC2", "endpoint"]
        .iter()
        .any(|w| explanation.contains(w))
}

/// The lookup fails, the probe finds a key: the session works, the verdict says what the
/// probe found, and the record notes the AWS error.
#[test]
fn aws_error() {
    let dir = tempfile::tempdir().unwrap();
    let held = dir.path().join("held-key");
    let held_pub = keygen(&held, "held-key");
    let down = ClosedPort::new();
    let w = aws_down_world(dir.path(), &down, &held, held_pub);
    let ip = w.sshd.ip.clone();
    let out = w
        .ssh(Mode::ProxyCommand)
        .args(["-p", &w.sshd.port.to_string(), &w.dest_for(&ip), "echo ok"])
        .timeout(60)
        .run();
    out.assert_success().assert_stdout("ok\n");
    let record = last_record(&w);
    eprintln!(
        "aws_error: client stderr: {}\nobserved record: {record:#}",
        out.stderr
    );
    assert!(
        attempts_of(&record)
            .iter()
            .any(|a| a["result"] == "accepted"),
        "{record:#}"
    );
    assert!(
        notes_the_aws_failure(&record),
        "the record does not note that the EC2 lookup failed (verdict {}): {record:#}\n{}",
        record["verdict"],
        out.report()
    );
}

/// The lookup fails and nothing is accepted: verdict aws-error (claims about EC2 data the
/// proxy never saw would be wrong), and the client sees it.
#[test]
fn aws_error_without_an_accepted_key() {
    let dir = tempfile::tempdir().unwrap();
    let held = dir.path().join("held-key");
    keygen(&held, "held-key");
    let foreign_pub = keygen(&dir.path().join("foreign"), "foreign");
    let down = ClosedPort::new();
    let w = aws_down_world(dir.path(), &down, &held, foreign_pub);
    let ip = w.sshd.ip.clone();
    let out = w
        .ssh_info(Mode::ProxyCommand)
        .args(["-p", &w.sshd.port.to_string(), &w.dest_for(&ip), "true"])
        .timeout(60)
        .run();
    out.assert_code(255)
        .assert_stderr_contains("ec2-ssh-proxy: Permission denied (publickey)");
    let record = last_record(&w);
    eprintln!("aws_error_without_an_accepted_key: observed record: {record:#}");
    assert_eq!(
        record["verdict"],
        "aws-error",
        "{record:#}\n{}",
        out.report()
    );
}
