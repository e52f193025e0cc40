//! Session channel relay: pty, exec exit status / exit signal, stderr, env. Each scenario runs
//! in jump mode (`ssh -J` via `serve`) and ProxyCommand mode (`connect %h %p`).
#[macro_use]
mod common;

use common::*;

/// `ssh -tt host 'tty; test -t 0 && echo TTY-OK'`: the remote command gets a real pty, and the
/// client's TERM arrives with the pty request.
fn pty_is_allocated_for_tty_requests(mode: Mode) {
    let w = World::start();
    let out = w
        .ssh(mode)
        .args([
            "-tt",
            &w.dest(),
            "tty; test -t 0 && echo TTY-OK; echo TERM=$TERM",
        ])
        .env("TERM", "vt220")
        .stdin_bytes(Vec::new())
        .timeout(30)
        .run();
    out.assert_success()
        .assert_stdout_contains("/dev/pts/")
        .assert_stdout_contains("TTY-OK")
        .assert_stdout_contains("TERM=vt220");
}

/// Without -t there is no pty (the proxy must not invent one).
fn no_pty_without_tty_request(mode: Mode) {
    let w = World::start();
    let out = w
        .ssh(mode)
        .args(["-T", &w.dest(), "test -t 0 || echo NO-TTY"])
        .run();
    out.assert_success().assert_stdout("NO-TTY\n");
}

/// An interactive login shell on a pty: commands typed on stdin run, `exit 3` ends the session
/// with status 3.
fn interactive_shell_on_pty(mode: Mode) {
    let w = World::start();
    let out = w
        .ssh(mode)
        .args(["-tt", &w.dest()])
        .stdin_bytes(&b"echo marker-$((6*7))\nexit 3\n"[..])
        .timeout(30)
        .run();
    out.assert_code(3).assert_stdout_contains("marker-42");
}

/// Exit statuses 0, 1 and 42 arrive unchanged.
fn exec_exit_codes(mode: Mode) {
    let w = World::start();
    for code in [0, 1, 42] {
        let out = w
            .ssh(mode)
            .args([&w.dest(), &format!("echo ran-{code}; exit {code}")])
            .run();
        out.assert_code(code)
            .assert_stdout(&format!("ran-{code}\n"));
    }
    // Proof the upstream login used the proxy's keyring key, not the user's key.
    let log = w.sshd.log();
    let upstream_fp = fingerprint(&w.upstream_key);
    assert!(
        log.contains("Accepted publickey") && log.contains(&upstream_fp),
        "sshd log should show `Accepted publickey ... {upstream_fp}` (the keyring key):\n{log}"
    );
}

/// Commands that print nothing: `true` and `exit 5` end the session with their status (the
/// exit-status/eof/close must reach the client even with no data before them).
fn exec_without_output_exits(mode: Mode) {
    let w = World::start();
    w.ssh(mode)
        .args([&w.dest(), "true"])
        .timeout(20)
        .run()
        .assert_success()
        .assert_stdout("");
    w.ssh(mode)
        .args([&w.dest(), "exit 5"])
        .timeout(20)
        .run()
        .assert_code(5)
        .assert_stdout("");
}

/// A remote command killed by a signal: the client exits as plain ssh to the sshd does.
fn exec_killed_by_signal_matches_plain_ssh(mode: Mode) {
    let w = World::start();
    let direct = w.direct_ssh().arg("kill -9 $$").run();
    let via = w.ssh(mode).args([&w.dest(), "kill -9 $$"]).run();
    assert_eq!(
        via.code(),
        direct.code(),
        "exit status via proxy differs from plain ssh (plain: {}, stderr {:?})\n{}",
        direct.code(),
        direct.stderr,
        via.report()
    );
}

/// stdout and stderr stay separate streams.
fn stderr_kept_separate_from_stdout(mode: Mode) {
    let w = World::start();
    let out = w
        .ssh(mode)
        .args([
            &w.dest(),
            "echo to-stdout; echo to-stderr >&2; echo more-stdout",
        ])
        .run();
    out.assert_success()
        .assert_stdout("to-stdout\nmore-stdout\n")
        .assert_stderr_contains("to-stderr\n");
    assert!(
        !out.stderr.contains("stdout"),
        "stdout text leaked into stderr\n{}",
        out.report()
    );
}

/// `-o SendEnv=TEST_VAR` reaches the remote command (the sshd has AcceptEnv TEST_*).
fn env_is_passed(mode: Mode) {
    let w = World::start();
    let out = w
        .ssh(mode)
        .args([
            "-o",
            "SendEnv=TEST_VAR",
            &w.dest(),
            "echo \"value=$TEST_VAR\"",
        ])
        .env("TEST_VAR", "hello from the client")
        .run();
    out.assert_success()
        .assert_stdout("value=hello from the client\n");
}

/// Small stdin is delivered and EOF is propagated (`cat` ends; `wc -c` counts).
fn stdin_eof_is_propagated(mode: Mode) {
    let w = World::start();
    let out = w
        .ssh(mode)
        .args([&w.dest(), "wc -c"])
        .stdin_bytes(&b"twelve bytes"[..])
        .run();
    out.assert_success();
    assert_eq!(out.stdout_text().trim(), "12", "{}", out.report());
}

/// stdin written before the upstream is ready must not be lost (Warpgate bug): the data is
/// already in the pipe when ssh starts.
fn early_stdin_is_not_dropped(mode: Mode) {
    let w = World::start();
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let out = w
        .ssh(mode)
        .args([&w.dest(), "cat"])
        .stdin_bytes(payload.clone())
        .timeout(60)
        .run();
    out.assert_success();
    assert!(
        out.stdout == payload,
        "got {} of {} bytes back\n{}",
        out.stdout.len(),
        payload.len(),
        out.report()
    );
}

both_modes!(
    pty_is_allocated_for_tty_requests,
    no_pty_without_tty_request,
    interactive_shell_on_pty,
    exec_exit_codes,
    exec_without_output_exits,
    exec_killed_by_signal_matches_plain_ssh,
    stderr_kept_separate_from_stdout,
    env_is_passed,
    stdin_eof_is_propagated,
    early_stdin_is_not_dropped,
);
