//! `ec2-ssh-proxy diagnose [USER@]HOST`: the plan and probes of a real connection, without
//! a session; prints what was found and records it in the diagnostic log.

use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

use anyhow::Result;

use crate::auth;
use crate::cli::Globals;
use crate::diaglog;
use crate::diagnosis::{self, Login};
use crate::proxy::{Mode, Proxy};
use crate::relay::upstream;

/// Splits `[USER@]HOST`; the user defaults to the local login name, as ssh does.
pub fn split_destination(destination: &str) -> (String, String) {
    match destination.rsplit_once('@') {
        Some((user, host)) if !user.is_empty() => (user.to_string(), host.to_string()),
        _ => {
            let local = std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .unwrap_or_else(|_| "root".to_string());
            (local, destination.trim_start_matches('@').to_string())
        }
    }
}

pub async fn run(globals: &Globals, destination: &str, port: u16, json: bool) -> Result<ExitCode> {
    let (user, host) = split_destination(destination);
    // Like `connect`: the user's own process, so a host that is not in EC2 is dialled as
    // typed; the lookup cache is the same one connect uses.
    let proxy = Proxy::load(globals, Mode::Connect, false).await?;
    let target = match proxy
        .resolver
        .resolve(&proxy.config, &host, port, true)
        .await
    {
        Ok(target) => target,
        Err(refusal) => {
            let record = diagnosis::record_refusal(
                &proxy,
                &host,
                &user,
                &refusal,
                diaglog::Mode::Diagnose,
                None,
            );
            let verdict = diagnosis::verdict_of(&refusal);
            if json {
                println!("{}", serde_json::to_string(&record)?);
            } else {
                println!("{user}@{host}: verdict {}\n\n{refusal}", verdict.code());
            }
            return Ok(ExitCode::from(auth::exit_code(verdict)));
        }
    };
    let inner = Arc::new(OnceLock::new());
    let first = upstream::connect(proxy.clone(), target.clone(), inner.clone()).await;
    let login = diagnosis::log_in(&proxy, &target, &inner, &user, None, first).await;
    let record = diagnosis::record(&proxy, &login, diaglog::Mode::Diagnose, None);
    if json {
        println!("{}", serde_json::to_string(&record)?);
    } else {
        print!("{}", report(&login));
    }
    Ok(ExitCode::from(auth::exit_code(login.verdict)))
}

/// What a person reads: the verdict, the explanation and the numbered fixes.
fn report(login: &Login) -> String {
    // A failed connection has its own wording (files, fingerprints); otherwise the summary.
    let text = match &login.connect_error {
        Some(error) => error.to_string(),
        None => login.explanation.summary.clone(),
    };
    let mut out = format!(
        "{}@{}: verdict {}\n\n{text}\n",
        login.evidence.user,
        login.evidence.host,
        login.verdict.code()
    );
    if !login.explanation.fixes.is_empty() {
        out.push_str("\nTo fix it for good:\n");
        for (n, fix) in login.explanation.fixes.iter().enumerate() {
            out.push_str(&format!("{}. {}\n", n + 1, fix.title));
            if let Some(command) = &fix.command {
                out.push_str(&format!("   {command}\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_split_like_ssh() {
        assert_eq!(
            split_destination("ec2-user@web-1"),
            ("ec2-user".into(), "web-1".into())
        );
        assert_eq!(split_destination("a@b@host").1, "host");
        let (user, host) = split_destination("i-0123");
        assert_eq!(host, "i-0123");
        assert!(!user.is_empty());
    }
}
