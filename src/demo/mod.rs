//! `ec2-ssh-proxy demo`: the seed story (an AMI moved between accounts still carries the
//! old account's authorized_keys) played on loopback in a few seconds, with no AWS account
//! and no sshd. The proxy part is the real code path: the same config, inventory lookup,
//! keyring, client-facing server, upstream login and diagnostic log as `connect`. Only the
//! instance (a throwaway SSH server) and the user's ssh (a russh client) are stand-ins.

pub mod client;
pub mod instance;
pub mod report;
pub mod scenario;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

use crate::config::Config;
use crate::front;
use crate::proxy::{Mode, Proxy};
use client::Outcome;
use instance::Instance;
use report::*;
use scenario::*;

/// What the user runs on the instance: proves where it ran and as whom.
pub const COMMAND: &str = r#"echo "hello from $(hostname)"; id -un"#;
/// The whole session, login and command; the demo is meant to take a few seconds.
const SESSION_TIMEOUT: Duration = Duration::from_secs(20);
/// After the client hangs up, time for the proxy to finish its session (and its log).
const WIND_DOWN: Duration = Duration::from_secs(2);

/// Runs the demo and prints the story. Exit 0 when the command ran on the instance.
pub async fn run() -> Result<ExitCode> {
    let started = Instant::now();
    let scenario = Scenario::create()?;
    let instance = Instance::start(scenario.old_key.public_key().clone(), LOGIN_USER).await?;
    let config = Config::load(&scenario.config_path, true)?;
    let proxy = Proxy::from_parts(config, &scenario.state_dir, Mode::Connect, false, false)
        .await
        .context("cannot build the proxy for the demo")?;
    let target = proxy
        .resolver
        .resolve(&proxy.config, INSTANCE, instance.port, true)
        .await
        .map_err(|refusal| anyhow!("{refusal}"))?;

    print!("{}", scenario_section(&scenario, instance.port));

    // One end is the proxy's stdin/stdout as in `connect`; the other is the user's ssh.
    let (user_side, proxy_side) = tokio::io::duplex(1 << 20);
    let ca = proxy.ca.public_key().clone();
    let front = tokio::spawn(front::run_inner(proxy.clone(), target, None, proxy_side));
    let session = client::run_command(
        user_side,
        ca,
        INSTANCE,
        LOGIN_USER,
        scenario.new_key.clone(),
        COMMAND,
    );
    let outcome = match tokio::time::timeout(SESSION_TIMEOUT, session).await {
        Ok(result) => result,
        Err(_) => Err(anyhow!(
            "the session did not finish within {} s",
            SESSION_TIMEOUT.as_secs()
        )),
    };
    match tokio::time::timeout(WIND_DOWN, front).await {
        Ok(Ok(Err(e))) => tracing::debug!("demo: proxy session: {e:#}"),
        Ok(Err(e)) => tracing::debug!("demo: proxy task: {e}"),
        _ => {}
    }

    let tried: Vec<Tried> = instance
        .events()
        .iter()
        .map(|event| Tried::from_event(&scenario, event))
        .collect();
    let record = last_record(&scenario.state_dir.join("diagnostics.jsonl"));
    print!("{}", tried_section(&tried));
    print!("{}", result_section(record.as_ref(), &tried));
    print!("{}", output_section(&outcome));
    println!(
        "\nDone in {:.1} s; the temporary keys and files ({}) are removed.",
        started.elapsed().as_secs_f64(),
        scenario.root.display()
    );
    Ok(match outcome {
        Ok(Outcome {
            exit_status: Some(_),
            ..
        }) => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}
