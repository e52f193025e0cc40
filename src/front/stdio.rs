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
        .and_then(|fd| pipe::Receiver::from_file(File::from(fd)).ok());
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
        .and_then(|fd| pipe::Sender::from_file(File::from(fd)).ok());
    match as_pipe {
        Some(pipe) => Box::pin(pipe),
        None => Box::pin(tokio::io::stdout()),
    }
}
