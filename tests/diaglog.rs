//! The diagnostic log through the library and the real binary: many writers at once (threads
//! and processes) lose and interleave nothing, rotation keeps the newest records, and
//! `ec2-ssh-proxy log` filters and prints what a user asks for.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ec2_ssh_proxy::diaglog::{
    self, AttemptRecord, AttemptResult, DiagLog, Method, Mode, Record, DEFAULT_MAX_BYTES,
};

/// A record whose session id says who wrote it, with enough text to make lines long
/// (about 1 KiB), so interleaved writes would show.
fn record(session: &str, verdict: &str) -> Record {
    Record {
        time: diaglog::now_rfc3339(),
        session_id: session.into(),
        mode: Mode::Connect,
        client_addr: None,
        local_user: "alice".into(),
        login_user: "ec2-user".into(),
        host: "web-1".into(),
        instance_id: Some("i-0abc1234def567890".into()),
        image_id: Some("ami-0123".into()),
        account: Some("222222222222".into()),
        region: Some("us-east-1".into()),
        launch_key_pair: Some("new-key".into()),
        lineage: serde_json::json!({"hops": [{"image_id": "ami-0123", "owner": "111111111111"}]}),
        attempts: vec![AttemptRecord {
            key_name: Some("old-key".into()),
            fingerprint: "SHA256:oldoldoldoldoldoldoldoldoldoldoldoldoldoldo".into(),
            source: "/home/alice/.ssh/old-key.pem".into(),
            method: Method::Query,
            result: AttemptResult::Accepted,
        }],
        verdict: verdict.into(),
        explanation: "x".repeat(700),
        fixes: vec!["Keep using old-key.".into()],
        duration_ms: 312,
        extra: Default::default(),
    }
}

/// Every line of the file parses, and the session ids are exactly `expected`.
fn assert_exactly(path: &Path, expected: BTreeSet<String>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut seen = BTreeSet::new();
    for line in text.lines() {
        let record: Record = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a whole record ({e}): {line:.120}"));
        assert!(
            seen.insert(record.session_id.clone()),
            "duplicate {}",
            record.session_id
        );
    }
    assert_eq!(text.lines().count(), expected.len());
    assert_eq!(seen, expected);
}

#[test]
fn eight_threads_appending_at_once_lose_and_interleave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("diagnostics.jsonl");
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                // A handle per thread, as each `connect` process has its own.
                let log = DiagLog::new(&path, DEFAULT_MAX_BYTES);
                for n in 0..50 {
                    log.append(&record(&format!("t{t}-{n}"), "ok")).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let expected = (0..8)
        .flat_map(|t| (0..50).map(move |n| format!("t{t}-{n}")))
        .collect();
    assert_exactly(&path, expected);
    assert_eq!(diaglog::read(&path).unwrap().len(), 400);
}

/// Set in the children spawned by `four_processes_...`: the log to append to and the
/// child's number.
const CHILD_ENV: &str = "EC2_SSH_PROXY_TEST_DIAGLOG_CHILD";

/// A child process of `four_processes_...` (this test binary run again); does nothing when
/// run as a normal test.
#[test]
fn appender_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (child, path) = spec.split_once(':').unwrap();
    let log = DiagLog::new(path, DEFAULT_MAX_BYTES);
    for n in 0..100 {
        log.append(&record(&format!("p{child}-{n}"), "ok")).unwrap();
    }
}

#[test]
fn four_processes_appending_at_once_lose_and_interleave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("diagnostics.jsonl");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..4)
        .map(|p| {
            Command::new(&exe)
                .args(["--exact", "appender_child", "--test-threads=1"])
                .env(CHILD_ENV, format!("{p}:{}", path.display()))
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let expected = (0..4)
        .flat_map(|p| (0..100).map(move |n| format!("p{p}-{n}")))
        .collect();
    assert_exactly(&path, expected);
}

#[test]
fn rotation_under_concurrent_writers_keeps_the_newest_records_readable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("diagnostics.jsonl");
    let line = serde_json::to_vec(&record("t0-0", "ok")).unwrap().len() as u64 + 1;
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                let log = DiagLog::new(&path, line * 20);
                for n in 0..50 {
                    log.append(&record(&format!("t{t}-{n}"), "ok")).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    // 200 records through files of 20: the newest file and one old one remain, whole.
    let records = diaglog::read(&path).unwrap();
    assert!(
        (21..=40).contains(&records.len()),
        "{} records",
        records.len()
    );
    let contents = diaglog::read_counting(&path).unwrap();
    assert_eq!(contents.corrupt, 0);
    // Rotation drops only the oldest: what remains of each thread's sequence is its end,
    // in order (a thread that finished early may have nothing left).
    for t in 0..4 {
        let prefix = format!("t{t}-");
        let kept: Vec<u32> = records
            .iter()
            .filter_map(|r| r.session_id.strip_prefix(&prefix)?.parse().ok())
            .collect();
        let first = 50 - kept.len() as u32;
        assert_eq!(kept, (first..50).collect::<Vec<_>>(), "thread {t}");
    }
    assert!(!PathBuf::from(format!("{}.2", path.display())).exists());
}

/// A config naming `log`, in a directory that also serves as HOME, so the user's own
/// config and state never leak in.
fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("diagnostics.jsonl");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!("diagnostic_log = {:?}\n", log.display().to_string()),
    )
    .unwrap();
    (dir, log, config)
}

fn proxy(home: &Path, config: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ec2-ssh-proxy"));
    cmd.env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_STATE_HOME")
        .arg("--config")
        .arg(config);
    cmd
}

fn run(home: &Path, config: &Path, args: &[&str]) -> (i32, String) {
    let out = proxy(home, config).arg("log").args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.is_empty() || !out.status.success(),
        "stderr: {stderr}"
    );
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

#[test]
fn log_command_filters_and_prints_json_or_text() {
    let (dir, path, config) = setup();
    let log = DiagLog::new(&path, DEFAULT_MAX_BYTES);
    let written = [
        record("s1", "ok"),
        record("s2", "ami-baked-key"),
        record("s3", "wrong-user"),
    ];
    for r in &written {
        log.append(r).unwrap();
    }
    let (code, out) = run(dir.path(), &config, &["--last", "2", "--json"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    let stored: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines, [stored[1].as_str(), stored[2].as_str()]);

    let (code, out) = run(dir.path(), &config, &["--verdict", "ami-baked-key"]);
    assert_eq!(code, 0);
    assert_eq!(out, diaglog::render(&written[1]));
    assert!(out.starts_with(&format!(
        "{}  ec2-user@web-1 (i-0abc1234def567890, 222222222222 us-east-1)  verdict: ami-baked-key  312 ms\n",
        written[1].time[..19].replace('T', " ") + "Z"
    )));
}

#[test]
fn log_command_without_a_log_says_so_and_succeeds() {
    let (dir, path, config) = setup();
    let (code, out) = run(dir.path(), &config, &[]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        format!("no diagnostic records yet ({})\n", path.display())
    );
}

#[test]
fn log_follow_prints_records_as_they_are_appended() {
    let (dir, path, config) = setup();
    let log = DiagLog::new(&path, DEFAULT_MAX_BYTES);
    log.append(&record("before", "ok")).unwrap();
    let mut child = proxy(dir.path(), &config)
        .args(["log", "--follow", "--json", "--verdict", "no-accepted-key"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started = Instant::now();
    // The follower may start after these appends or before: either way it must print
    // exactly the matching record once, and not the others.
    std::thread::sleep(Duration::from_millis(300));
    log.append(&record("skipped", "ok")).unwrap();
    log.append(&record("after", "no-accepted-key")).unwrap();
    let line = lines.next().unwrap().unwrap();
    let shown: Record = serde_json::from_str(&line).unwrap();
    assert_eq!(shown.session_id, "after");
    assert!(started.elapsed() < Duration::from_secs(5));
    child.kill().unwrap();
    child.wait().unwrap();
}
