//! Port and agent forwarding through the proxy: -L (direct-tcpip), -R (tcpip-forward +
//! forwarded-tcpip), -A (auth-agent). Each scenario in both modes.
#[macro_use]
mod common;

use common::*;
use std::time::Duration;

/// `ssh -N -L LPORT:127.0.0.1:ECHO host`: bytes sent to LPORT come back from the test's echo
/// server (small and 4 MiB payloads).
fn local_forward_to_echo_server(mode: Mode) {
    let w = World::start();
    let echo = echo_server();
    let lport = free_port();
    let running = w
        .ssh(mode)
        .args([
            "-N",
            "-o",
            "ExitOnForwardFailure=yes",
            "-L",
            &format!("127.0.0.1:{lport}:127.0.0.1:{echo}"),
            &w.dest(),
        ])
        .timeout(90)
        .spawn();
    for payload in [
        b"hello through -L\n".to_vec(),
        (0..(4u32 << 20)).map(|i| (i * 7 % 256) as u8).collect(),
    ] {
        match echo_roundtrip(lport, &payload, Duration::from_secs(20)) {
            Ok(got) => assert!(
                got == payload,
                "-L echo returned {} bytes, sent {} ({mode:?}); ssh stderr: {}\n{}",
                got.len(),
                payload.len(),
                running.stderr_so_far(),
                w.diagnostics()
            ),
            Err(e) => panic!(
                "-L round trip failed ({mode:?}): {e}; ssh stderr: {}\n{}",
                running.stderr_so_far(),
                w.diagnostics()
            ),
        }
    }
}

/// `ssh -R RPORT:127.0.0.1:ECHO host 'python3 client'`: a client on the host connects to the
/// forwarded port and gets its payload echoed by the test's server.
fn remote_forward_connects_back(mode: Mode) {
    let w = World::start();
    let echo = echo_server();
    let rport = free_port();
    let script = format!(
        r#"
import socket, sys, time
deadline = time.time() + 15
while True:
    try:
        s = socket.create_connection(("127.0.0.1", {rport}), timeout=10)
        break
    except OSError as e:
        if time.time() > deadline:
            sys.exit("connect failed: %s" % e)
        time.sleep(0.2)
s.sendall(b"payload-through-R")
s.shutdown(socket.SHUT_WR)
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
print(data.decode())
"#
    );
    let out = w
        .ssh(mode)
        .args([
            "-o",
            "ExitOnForwardFailure=yes",
            "-R",
            &format!("127.0.0.1:{rport}:127.0.0.1:{echo}"),
            &w.dest(),
        ])
        .arg(format!("/usr/bin/python3 -c '{script}'"))
        .timeout(60)
        .run();
    out.assert_success().assert_stdout("payload-through-R\n");
}

/// `ssh -A host ssh-add -l` lists the key held by the user's local agent.
fn agent_forwarding_lists_local_agent_key(mode: Mode) {
    let w = World::start();
    let agent = Agent::start(w.tmp.path());
    let key = w.path("agent_key");
    keygen(&key, "agent-key-comment");
    agent.add(&key);
    let fp = fingerprint(&key);
    let out = w
        .ssh(mode)
        .args(["-A", &w.dest(), "ssh-add -l"])
        .env("SSH_AUTH_SOCK", &agent.sock)
        .timeout(30)
        .run();
    out.assert_success().assert_stdout_contains(&fp);
}

/// Without -A the host sees no agent.
fn no_agent_without_dash_a(mode: Mode) {
    let w = World::start();
    let agent = Agent::start(w.tmp.path());
    let key = w.path("agent_key");
    keygen(&key, "agent-key-comment");
    agent.add(&key);
    let out = w
        .ssh(mode)
        .args(["-a", &w.dest(), "echo \"sock=${SSH_AUTH_SOCK:-none}\""])
        .env("SSH_AUTH_SOCK", &agent.sock)
        .run();
    out.assert_success().assert_stdout("sock=none\n");
}

both_modes!(
    local_forward_to_echo_server,
    remote_forward_connects_back,
    agent_forwarding_lists_local_agent_key,
    no_agent_without_dash_a,
);
