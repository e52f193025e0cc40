//! Ciphers on both hops: clients may choose AES-GCM (the cheapest with AES instructions),
//! and the proxy itself prefers it towards the host, falling back when the host refuses it.
#[macro_use]
mod common;

use common::*;

/// The cipher the sshd's key exchange settled on, from its DEBUG1 log.
fn negotiated(sshd_log: &str) -> Vec<String> {
    sshd_log
        .lines()
        .filter_map(|l| l.split("kex: client->server cipher: ").nth(1))
        .map(|rest| rest.split_whitespace().next().unwrap_or("").to_string())
        .collect()
}

/// `ssh -c aes128-gcm@openssh.com`: the client asks the proxy for AES-128-GCM and gets it.
fn a_client_may_choose_aes128_gcm(mode: Mode) {
    let w = World::start();
    let out = w
        .ssh(mode)
        .args(["-c", "aes128-gcm@openssh.com", &w.dest(), "echo gcm-ok"])
        .run();
    out.assert_success().assert_stdout("gcm-ok\n");
}

/// Towards the host the proxy chooses AES-128-GCM, which the sshd's log shows.
fn the_proxy_prefers_aes128_gcm_upstream(mode: Mode) {
    let w = World::builder().sshd_config("LogLevel DEBUG1\n").start();
    w.ssh(mode).args([&w.dest(), "true"]).run().assert_success();
    let log = w.sshd.log();
    assert_eq!(
        negotiated(&log),
        vec!["aes128-gcm@openssh.com"],
        "sshd log:\n{}",
        tail(&log, 3000)
    );
}

/// A host that allows only chacha20-poly1305 still gets a session.
fn a_host_that_refuses_aes_gcm_gets_chacha20(mode: Mode) {
    let w = World::builder()
        .sshd_config("LogLevel DEBUG1\nCiphers chacha20-poly1305@openssh.com\n")
        .start();
    let out = w.ssh(mode).args([&w.dest(), "echo still-ok"]).run();
    out.assert_success().assert_stdout("still-ok\n");
    assert_eq!(
        negotiated(&w.sshd.log()),
        vec!["chacha20-poly1305@openssh.com"]
    );
}

both_modes!(
    a_client_may_choose_aes128_gcm,
    the_proxy_prefers_aes128_gcm_upstream,
    a_host_that_refuses_aes_gcm_gets_chacha20,
);
