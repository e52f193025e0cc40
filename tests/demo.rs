//! `ec2-ssh-proxy demo` as a user runs it: the built binary, start to finish, on loopback.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Generous against a loaded CI machine; the demo itself takes well under a second.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Who the throwaway instance runs commands as: the user running the test.
fn current_user() -> String {
    let output = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn demo_runs_the_command_through_the_proxy() {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ec2-ssh-proxy"))
        .arg("demo")
        // The user's agent or config must not change the story.
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ec2-ssh-proxy demo");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the demo") {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            panic!("demo still running after {} s", TIMEOUT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        status.success(),
        "demo failed ({status}):\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("hello from"), "{stdout}");
    let output = stdout
        .split("== The command's output ==")
        .nth(1)
        .expect("an output section");
    let user = current_user();
    assert!(
        output.lines().any(|line| line.trim() == user),
        "expected {user} in:\n{output}"
    );
    assert!(output.contains("exit status: 0"), "{output}");
    // The story: the launch key pair was refused and the AMI's key got in.
    assert!(stdout.contains("offered 'new-key'"), "{stdout}");
    assert!(stdout.contains("signed with 'old-key'"), "{stdout}");
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
}
