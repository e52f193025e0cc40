//! ProxyCommand mode (`connect HOST PORT`): the inner server runs over stdin/stdout of this
//! process, which OpenSSH starts per connection.

use std::fs::File;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::unix::pipe;

use crate::diaglog;
use crate::diagnosis;
use crate::front::run_inner;
use crate::proxy::Proxy;

pub async fn connect(proxy: Arc<Proxy>, host: &str, port: u16) -> Result<ExitCode> {
    // The user's own ProxyCommand: dialling an unknown host as typed opens nothing new.
    let target = match proxy
        .resolver
        .resolve(&proxy.config, host, port, true)
        .await
    {
        Ok(target) => target,
        Err(refusal) => {
            // The login user is not known yet (ssh has not spoken); the record says so.
            diagnosis::record_refusal(&proxy, host, "", &refusal, diaglog::Mode::Connect, None);
            eprintln!("{refusal}");
            return Ok(ExitCode::from(255));
        }
    };
    let stream = tokio::io::join(stdin(), stdout());
    run_inner(proxy, target, None, stream).await?;
    Ok(ExitCode::SUCCESS)
}

type Reader = Pin<Box<dyn AsyncRead + Send>>;
type Writer = Pin<Box<dyn AsyncWrite + Send>>;

/// OpenSSH hands a ProxyCommand two pipes. Registered with the reactor they are read
/// without a thread hop per read, which tokio's blocking stdin cannot avoid; anything
/// else (a socket, a terminal) falls back to tokio's stdin.
fn stdin() -> Reader {
    let as_pipe = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .and_then(|fd| {
            widen(&fd);
            pipe::Receiver::from_file(File::from(fd)).ok()
        });
    match as_pipe {
        Some(pipe) => Box::pin(pipe),
        None => Box::pin(tokio::io::stdin()),
    }
}

fn stdout() -> Writer {
    let as_pipe = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .and_then(|fd| {
            widen(&fd);
            pipe::Sender::from_file(File::from(fd)).ok()
        });
    match as_pipe {
        Some(pipe) => Box::pin(pipe),
        None => Box::pin(tokio::io::stdout()),
    }
}

/// Linux pipes hold 64 KiB; ssh then writes (and we read) a few packets per wake-up.
/// A 1 MiB pipe (the unprivileged limit) lets each side move more per system call.
/// Not a pipe, or not allowed: left as it is.
fn widen(fd: &std::os::fd::OwnedFd) {
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl on a descriptor we own; F_SETPIPE_SZ takes an int and fails harmlessly
    // (EBADF/EINVAL/EPERM) on anything else.
    unsafe {
        libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_BYTES);
    }
}

const PIPE_BYTES: libc::c_int = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsRawFd, OwnedFd};

    fn pipe_bytes(fd: &OwnedFd) -> libc::c_int {
        // SAFETY: F_GETPIPE_SZ on a pipe we own.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETPIPE_SZ) }
    }

    #[test]
    fn both_ends_of_a_pipe_are_widened_to_one_mebibyte() {
        let (reader, writer) = std::io::pipe().unwrap();
        let (reader, writer) = (OwnedFd::from(reader), OwnedFd::from(writer));
        assert!(
            pipe_bytes(&reader) < PIPE_BYTES,
            "Linux's default is 64 KiB"
        );
        widen(&reader);
        assert_eq!(pipe_bytes(&reader), PIPE_BYTES);
        assert_eq!(
            pipe_bytes(&writer),
            PIPE_BYTES,
            "one buffer, shared by both ends"
        );
    }

    #[test]
    fn a_descriptor_that_is_not_a_pipe_is_left_alone() {
        let file = OwnedFd::from(tempfile::tempfile().unwrap());
        widen(&file);
        // SAFETY: F_GETPIPE_SZ on a descriptor we own.
        let got = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETPIPE_SZ) };
        assert_eq!(got, -1);
    }
}
