//! `ec2-ssh-proxy diagnose` on the seed's world (issue 4): the verdict, the explanation and
//! the fix on stdout, `--json`, the exit codes, and no session opened on the instance.
#[macro_use]
mod common;

use common::seed::{proxy_cmd, records, seed};
use common::*;
use serde_json::Value;

#[test]
fn diagnose_explains_the_seed_and_opens_no_session() {
    let s = seed();
    let w = &s.w;
    let port = w.sshd.port.to_string();
    let dest = w.dest_for(&s.id);

    // Text: the verdict, the key that works, and the import-key-pair fix.
    let out = proxy_cmd(w, &["diagnose", &dest, "-p", &port]);
    out.assert_success()
        .assert_stdout_contains("verdict ami-baked-key")
        .assert_stdout_contains("'old-key'")
        .assert_stdout_contains("aws ec2 import-key-pair");
    assert!(out.stdout_text().contains(&s.id), "{}", out.report());

    // Logged as a diagnose record with both keys' fingerprints.
    let logged = records(w);
    assert_eq!(logged.len(), 1, "{logged:#?}");
    assert_eq!(logged[0]["verdict"], "ami-baked-key", "{:#}", logged[0]);
    assert_eq!(logged[0]["mode"], "diagnose", "{:#}", logged[0]);
    let attempts = logged[0]["attempts"].to_string();
    assert!(attempts.contains(&s.new_fp), "{:#}", logged[0]);
    assert!(attempts.contains(&s.old_fp), "{:#}", logged[0]);

    // No session was opened on the instance, though the sshd was asked.
    let sshd_log = w.sshd.log();
    assert!(
        !sshd_log.contains("Starting session"),
        "diagnose opened a session:\n{}",
        tail(&sshd_log, 6000)
    );
    assert!(
        sshd_log.contains("Accepted publickey") || sshd_log.contains("Postponed publickey"),
        "diagnose did not reach the sshd at all?\n{}",
        tail(&sshd_log, 6000)
    );
}

/// `--json` prints the record: one JSON object.
#[test]
fn diagnose_json_prints_one_record() {
    let s = seed();
    let w = &s.w;
    let port = w.sshd.port.to_string();
    let dest = w.dest_for(&s.id);
    let json = proxy_cmd(w, &["diagnose", &dest, "-p", &port, "--json"]);
    json.assert_success();
    let text = json.stdout_text();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one JSON line\n{}", json.report());
    let record: Value = serde_json::from_str(lines[0])
        .unwrap_or_else(|e| panic!("not JSON ({e})\n{}", json.report()));
    assert_eq!(record["verdict"], "ami-baked-key", "{record:#}");
    assert_eq!(record["mode"], "diagnose", "{record:#}");
    assert_eq!(record["instance_id"], s.id.as_str(), "{record:#}");
    let attempts = record["attempts"].to_string();
    assert!(attempts.contains(&s.old_fp), "{record:#}");
    assert!(attempts.contains(&s.new_fp), "{record:#}");
    assert!(
        !w.sshd.log().contains("Starting session"),
        "{}",
        w.sshd.log()
    );
}

/// Running `diagnose` again (the winner is now cached, so no probe is made) must not
/// change the diagnosis: old-key is still the AMI's baked key.
#[test]
fn diagnose_twice_gives_the_same_verdict() {
    let s = seed();
    let w = &s.w;
    let port = w.sshd.port.to_string();
    let dest = w.dest_for(&s.id);
    proxy_cmd(w, &["diagnose", &dest, "-p", &port])
        .assert_success()
        .assert_stdout_contains("verdict ami-baked-key");
    let again = proxy_cmd(w, &["diagnose", &dest, "-p", &port, "--json"]);
    again.assert_success();
    let record: Value = serde_json::from_str(again.stdout_text().trim())
        .unwrap_or_else(|e| panic!("not JSON ({e})\n{}", again.report()));
    assert_eq!(record["verdict"], "ami-baked-key", "{record:#}");
}

#[test]
fn diagnose_without_a_destination_is_a_usage_error() {
    // No sshd or EC2 needed: clap rejects the command line.
    let w = World::start();
    let out = proxy_cmd(&w, &["diagnose"]);
    out.assert_code(2);
    assert!(
        out.stderr.to_lowercase().contains("usage"),
        "{}",
        out.report()
    );
    assert!(records(&w).is_empty(), "a usage error wrote a record");
}
