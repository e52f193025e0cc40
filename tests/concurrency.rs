//! Many sessions at once through one proxy.
#[macro_use]
mod common;

use common::*;

/// 20 concurrent sessions, each piping a distinct payload through `cat`, all come back intact
/// and unmixed.
fn twenty_concurrent_sessions(mode: Mode) {
    let w = World::start();
    let payloads: Vec<Vec<u8>> = (0..20)
        .map(|i| {
            format!("session-{i:02}:")
                .repeat(2000 + i * 100)
                .into_bytes()
        })
        .collect();
    let running: Vec<_> = payloads
        .iter()
        .map(|p| {
            w.ssh(mode)
                .args([&w.dest(), "cat"])
                .stdin_bytes(p.clone())
                .timeout(90)
                .spawn()
        })
        .collect();
    for (i, (r, p)) in running.into_iter().zip(&payloads).enumerate() {
        let out = r.wait();
        out.assert_success();
        assert!(
            out.stdout == *p,
            "session {i}: got {} bytes (starts {:?}), expected {} bytes\n{}",
            out.stdout.len(),
            String::from_utf8_lossy(&out.stdout[..out.stdout.len().min(40)]),
            p.len(),
            out.report()
        );
    }
    // Every connection left one whole record in the diagnostic log, though in ProxyCommand
    // mode twenty separate processes appended to it at once.
    let records = common::seed::records(&w);
    assert_eq!(records.len(), 20, "{records:#?}");
    assert!(records.iter().all(|r| r["verdict"] == "ok"), "{records:#?}");
}

both_modes!(twenty_concurrent_sessions);
