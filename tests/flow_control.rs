//! A slow reader must not make the proxy buffer without bound: with the client not reading
//! a 1 GiB stream, the jump daemon's memory stays small (per-channel windows and the read
//! budget hold the rest back at the host).
#[macro_use]
mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn a_stalled_reader_keeps_the_proxy_small() {
    let w = World::start();
    let before = w.proxy.rss_kib().expect("proxy RSS");
    let mut ssh = Command::new("ssh")
        .arg("-F")
        .arg(&w.ssh_config)
        .args(["-J", &w.jump_spec(), &w.dest(), "head -c 1G /dev/zero"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped()) // never read
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let during = w.proxy.rss_kib().expect("proxy RSS");
    let _ = ssh.kill();
    let _ = ssh.wait();
    // The pipe to us holds 64 KiB, ssh's window a few MiB; the proxy holds at most its
    // 8 MiB budget per direction plus a window. 1 GiB unthrottled would show.
    assert!(
        during < before + 48 * 1024,
        "proxy grew from {before} KiB to {during} KiB while the reader stalled{}",
        w.diagnostics()
    );
}
