//! Clients that are not ssh, that never finish logging in, or that come in numbers: each is
//! dropped with its connection, and the proxy goes on serving everybody else.
#[macro_use]
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// Reads until the proxy closes the connection; returns what it sent and how long it took,
/// or None if it was still open after `limit`.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<(Vec<u8>, Duration)> {
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.checked_sub(started.elapsed())?;
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return Some((seen, started.elapsed())),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some((seen, started.elapsed()))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if started.elapsed() >= limit {
                    return None;
                }
            }
            Err(e) => panic!("read: {e}"),
        }
    }
}

fn still_serving(w: &World) {
    w.ssh(Mode::Jump)
        .args([&w.dest(), "echo still-serving"])
        .run()
        .assert_success()
        .assert_stdout("still-serving\n");
}

/// An HTTP request on the jump port: the proxy answers with its SSH version line, drops
/// the connection, and serves the next client as before.
#[test]
fn garbage_on_the_jump_port_is_dropped_and_the_proxy_keeps_serving() {
    let w = World::start();
    let mut stream = TcpStream::connect(("127.0.0.1", w.proxy.port)).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: web-1\r\n\r\n\x00\xff\xfe binary \x01\x02\r\n")
        .unwrap();
    let (seen, _) = read_until_closed(&mut stream, Duration::from_secs(10))
        .expect("the proxy kept a garbage connection open for 10 s");
    assert!(
        seen.starts_with(b"SSH-2.0-"),
        "{:?}",
        String::from_utf8_lossy(&seen)
    );
    still_serving(&w);
}

/// A connection that sends nothing, and one that sends its version line and then nothing,
/// are both dropped once `login_grace_time` has passed (OpenSSH's LoginGraceTime).
#[test]
fn silent_and_stalled_clients_are_dropped_after_the_login_grace_time() {
    let w = World::builder().config("login_grace_time = 2").start();
    let connected = Instant::now();
    let mut silent = TcpStream::connect(("127.0.0.1", w.proxy.port)).unwrap();
    let mut stalled = TcpStream::connect(("127.0.0.1", w.proxy.port)).unwrap();
    stalled.write_all(b"SSH-2.0-OpenSSH_9.2\r\n").unwrap();
    for (name, stream) in [("silent", &mut silent), ("stalled", &mut stalled)] {
        read_until_closed(stream, Duration::from_secs(15))
            .unwrap_or_else(|| panic!("the {name} connection was still open after 15 s"));
        let after = connected.elapsed();
        assert!(
            after >= Duration::from_millis(1500),
            "the {name} connection was dropped after {after:?}, before its grace time"
        );
    }
    assert!(
        w.proxy.log().contains("did not log in within 2 s"),
        "{}",
        w.proxy.log()
    );
    still_serving(&w);
}

/// `connect` with something other than ssh on its stdin fails at once, saying so, instead
/// of waiting.
#[test]
fn garbage_on_connect_stdin_fails_fast_with_a_message() {
    let w = World::start();
    let mut cmd = Command::new(proxy_bin());
    cmd.args(w.proxy.base_args())
        .args(["connect", HOST, "22"])
        .env_remove("SSH_AUTH_SOCK");
    let started = Instant::now();
    let out = Cmd::from_command(cmd, String::new())
        .stdin_bytes(b"GET / HTTP/1.1\r\nHost: web-1\r\n\r\n".to_vec())
        .timeout(20)
        .run();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!out.status.success());
    assert!(
        out.stderr
            .contains("ec2-ssh-proxy: SSH handshake with the client for web-1 failed: invalid SSH version string"),
        "{}",
        out.stderr
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("SSH-2.0-"),
        "stdout: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The grace time bounds logging in, not the session: a client that logged in stays.
#[test]
fn a_client_that_logged_in_outlives_the_grace_time() {
    let w = World::builder().config("login_grace_time = 1").start();
    w.ssh(Mode::Jump)
        .args([&w.dest(), "sleep 3; echo survived"])
        .timeout(30)
        .run()
        .assert_success()
        .assert_stdout("survived\n");
}

/// Each connection holds a few descriptors: `serve` raises a low soft open-file limit to
/// the hard one, so that the connection limit, not the descriptor limit, is what holds.
#[test]
fn serve_raises_a_low_open_file_limit() {
    use std::io::BufRead;
    let w = World::start();
    let hard = std::fs::read_to_string("/proc/self/limits")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4).map(String::from))
        .unwrap();
    let script = format!(
        "ulimit -S -n 256 && exec {} {} serve --listen 127.0.0.1:0",
        proxy_bin().display(),
        w.proxy.base_args().join(" ")
    );
    let mut child = Command::new("bash")
        .args(["-c", &script])
        .env_remove("SSH_AUTH_SOCK")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("listening on") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "serve exited");
    }
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .unwrap();
    assert_eq!(soft, hard, "{limits}");
}
