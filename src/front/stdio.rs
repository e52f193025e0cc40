//! ProxyCommand mode (`connect HOST PORT`): the inner server runs over stdin/stdout of this
//! process, which OpenSSH starts per connection.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;

use crate::front::run_inner;
use crate::proxy::Proxy;
use crate::target;

pub async fn connect(proxy: Arc<Proxy>, host: &str, port: u16) -> Result<ExitCode> {
    // The user's own ProxyCommand: dialling an unknown host as typed opens nothing new.
    let target = match target::resolve(&proxy.config, host, port, true) {
        Ok(target) => target,
        Err(refusal) => {
            eprintln!("{refusal}");
            return Ok(ExitCode::from(255));
        }
    };
    let stream = tokio::io::join(tokio::io::stdin(), tokio::io::stdout());
    run_inner(proxy, target, stream).await?;
    Ok(ExitCode::SUCCESS)
}
