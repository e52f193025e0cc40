//! What OpenSSH trusts: with only the proxy's `@cert-authority` line it connects under
//! StrictHostKeyChecking=yes, and it still does when known_hosts already holds the real
//! host's own key for that name (the certificate is checked against the CA, not the key).
#[macro_use]
mod common;

use common::*;

fn real_host_key_in_known_hosts_does_not_break_the_certificate(mode: Mode) {
    let w = World::start();
    let real = std::fs::read_to_string(pub_path(&w.sshd.host_key)).unwrap();
    let mut known = std::fs::read_to_string(&w.known_hosts).unwrap();
    known.push_str(&format!("web-1 {real}"));
    std::fs::write(&w.known_hosts, known).unwrap();
    w.ssh(mode)
        .args([&w.dest(), "echo trusted"])
        .run()
        .assert_success()
        .assert_stdout("trusted\n");
}
both_modes!(real_host_key_in_known_hosts_does_not_break_the_certificate);

/// Without the CA line, StrictHostKeyChecking=yes refuses: the proxy is not silently trusted.
fn without_the_ca_line_the_client_refuses(mode: Mode) {
    let w = World::start();
    std::fs::write(&w.known_hosts, "").unwrap();
    let out = w
        .ssh_info(mode)
        .args([&w.dest(), "echo SHOULD-NOT-RUN"])
        .run();
    out.assert_code(255)
        .assert_stderr_contains("Host key verification failed");
    assert!(
        !out.stdout_text().contains("SHOULD-NOT-RUN"),
        "{}",
        out.report()
    );
}
both_modes!(without_the_ca_line_the_client_refuses);
