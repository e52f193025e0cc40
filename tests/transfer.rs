//! Bulk data: 64 MiB through `cat`, scp both directions (SFTP-based and legacy -O), sftp batch.
//! Byte-exact comparisons. Each scenario in both modes.
#[macro_use]
mod common;

use common::*;

const BIG: u64 = 64 << 20;
/// Generous: debug builds of the crypto crates are slow; a hang still fails.
const BIG_TIMEOUT: u64 = 300;

/// 64 MiB of random bytes piped through `ssh host cat` comes back byte-exact.
fn stdin_64mib_through_cat_roundtrip(mode: Mode) {
    let w = World::start();
    let src = w.path("src.bin");
    let back = w.path("back.bin");
    random_file(&src, BIG);
    let out = w
        .ssh(mode)
        .args([&w.dest(), "cat"])
        .stdin_file(&src)
        .timeout(BIG_TIMEOUT)
        .run();
    out.assert_success();
    std::fs::write(&back, &out.stdout).unwrap();
    assert_same_file(
        &src,
        &back,
        &format!("64 MiB through cat ({mode:?})\n{}", out.report()),
    );
}

/// `scp local host:remote` (default SFTP-based scp), 64 MiB, checksum compared on the host.
fn scp_upload_64mib(mode: Mode) {
    let w = World::start();
    let src = w.path("up.bin");
    random_file(&src, BIG);
    let remote = w.sshd.dir.path().join("uploaded.bin");
    let out = w
        .scp(mode)
        .arg("-q")
        .arg(&src)
        .arg(format!("{}:{}", w.dest(), remote.display()))
        .timeout(BIG_TIMEOUT)
        .run();
    out.assert_success();
    assert_same_file(
        &src,
        &remote,
        &format!("scp upload ({mode:?})\n{}", out.report()),
    );
}

/// `scp host:remote local`, 64 MiB.
fn scp_download_64mib(mode: Mode) {
    let w = World::start();
    let remote = w.sshd.dir.path().join("to-download.bin");
    random_file(&remote, BIG);
    let dst = w.path("down.bin");
    let out = w
        .scp(mode)
        .arg("-q")
        .arg(format!("{}:{}", w.dest(), remote.display()))
        .arg(&dst)
        .timeout(BIG_TIMEOUT)
        .run();
    out.assert_success();
    assert_same_file(
        &remote,
        &dst,
        &format!("scp download ({mode:?})\n{}", out.report()),
    );
}

/// Legacy scp protocol (`scp -O`: an exec of `scp -t`/`scp -f` instead of the sftp subsystem),
/// 4 MiB each way.
fn scp_legacy_protocol_both_directions(mode: Mode) {
    let w = World::start();
    let src = w.path("legacy.bin");
    random_file(&src, 4 << 20);
    let remote = w.sshd.dir.path().join("legacy-up.bin");
    let up = w
        .scp(mode)
        .args(["-O", "-q"])
        .arg(&src)
        .arg(format!("{}:{}", w.dest(), remote.display()))
        .timeout(120)
        .run();
    up.assert_success();
    assert_same_file(
        &src,
        &remote,
        &format!("scp -O upload ({mode:?})\n{}", up.report()),
    );
    let dst = w.path("legacy-down.bin");
    let down = w
        .scp(mode)
        .args(["-O", "-q"])
        .arg(format!("{}:{}", w.dest(), remote.display()))
        .arg(&dst)
        .timeout(120)
        .run();
    down.assert_success();
    assert_same_file(
        &src,
        &dst,
        &format!("scp -O download ({mode:?})\n{}", down.report()),
    );
}

/// `sftp -b batch`: put, ls, get, rm; files compared.
fn sftp_batch_put_get(mode: Mode) {
    let w = World::start();
    let src = w.path("sftp-src.bin");
    random_file(&src, 3 << 20);
    let remote = w.sshd.dir.path().join("sftp-remote.bin");
    let back = w.path("sftp-back.bin");
    let batch = w.path("batch");
    std::fs::write(
        &batch,
        format!(
            "put {src} {remote}\nls -l {remote}\nget {remote} {back}\nrm {remote}\n",
            src = src.display(),
            remote = remote.display(),
            back = back.display()
        ),
    )
    .unwrap();
    let out = w
        .sftp(mode)
        .arg("-b")
        .arg(&batch)
        .arg(w.dest())
        .timeout(120)
        .run();
    out.assert_success()
        .assert_stdout_contains("sftp-remote.bin");
    assert_same_file(
        &src,
        &back,
        &format!("sftp put+get ({mode:?})\n{}", out.report()),
    );
    assert!(
        !remote.exists(),
        "sftp rm did not remove {}\n{}",
        remote.display(),
        out.report()
    );
}

both_modes!(
    stdin_64mib_through_cat_roundtrip,
    scp_upload_64mib,
    scp_download_64mib,
    scp_legacy_protocol_both_directions,
    sftp_batch_put_get,
);
