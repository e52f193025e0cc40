//! ec2-ssh-proxy: an SSH proxy for EC2 hosts that logs in upstream with its own keyring,
//! so it can see why a key is refused, use the right one, and explain.

use std::time::Duration;

use ec2_ssh_proxy::inventory::cache::Cache;
use ec2_ssh_proxy::keys::links;
use ec2_ssh_proxy::{ca, cli, demo, diaglog, diagnose, front, keyring, proxy, resolve, state};

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, KeyringCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli);
    let runtime = match runtime_for(&cli.command) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ec2-ssh-proxy: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let connect = matches!(cli.command, Command::Connect { .. });
    let result = runtime.block_on(run(cli));
    if connect {
        // When stdout is not a pipe (a file, a terminal), tokio writes it from a blocking
        // thread: wait for the last write, but not for long, since a blocking stdin read
        // (stdin not a pipe either) never ends by itself.
        runtime.shutdown_timeout(Duration::from_millis(250));
    } else {
        runtime.shutdown_background();
    }
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ec2-ssh-proxy: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `connect` relays one session: on one thread its tasks hand data to each other without
/// waking a second thread for every packet, which on two cores costs more than it gains.
/// `serve` holds many sessions at once and spreads them over the cores.
fn runtime_for(command: &Command) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match command {
        Command::Connect { .. } => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all().build()
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Serve { listen } => {
            let proxy = proxy::Proxy::load(&cli.globals, proxy::Mode::Jump, false).await?;
            let listen = listen.unwrap_or(proxy.config.listen);
            front::jump::serve(proxy, listen).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Connect {
            host,
            port,
            refresh,
        } => {
            let proxy = proxy::Proxy::load(&cli.globals, proxy::Mode::Connect, *refresh).await?;
            front::stdio::connect(proxy, host, *port).await
        }
        Command::Demo => demo::run().await,
        Command::Diagnose {
            destination,
            port,
            json,
        } => diagnose::run(&cli.globals, destination, *port, *json).await,
        Command::Ca => {
            let globals = &cli.globals;
            let config = globals.load_config()?;
            let state = state::StateDir::open(&globals.state_dir())?;
            let ca = state.ca_key()?;
            println!(
                "{}",
                ca::authority_line(&config.ca_patterns, ca.public_key())
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Log {
            last,
            host,
            verdict,
            json,
            follow,
        } => {
            let config = cli.globals.load_config()?;
            let path = config.diagnostic_log_path(&cli.globals.state_dir());
            let options = diaglog::ShowOptions {
                filter: diaglog::Filter {
                    last: *last,
                    host: host.clone(),
                    verdict: verdict.clone(),
                },
                json: *json,
                follow: *follow,
            };
            // Plain blocking file reads and sleeps: keep them off the async workers.
            tokio::task::spawn_blocking(move || diaglog::show(&path, &options)).await??;
            Ok(ExitCode::SUCCESS)
        }
        Command::Keyring {
            command: KeyringCommand::List,
        } => {
            let config = cli.globals.load_config()?;
            let keyring = keyring::Keyring::load(&config.keyring, true).await;
            print!("{}", keyring.render_list());
            // Which AWS key pair each key is: asks EC2 (DescribeKeyPairs) in every account.
            let resolver =
                resolve::Resolver::new(&config, Cache::in_memory(Duration::ZERO)).await?;
            let (pairs, problems) = resolver.key_pairs().await;
            print!(
                "{}",
                links::render(&keyring.keys, &pairs, &config.keys, &problems)
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `RUST_LOG` wins; otherwise `-v` raises our own level. `connect` writes to the user's
/// terminal, so it stays quiet (warnings only) unless asked.
fn init_tracing(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    let default = match (cli.globals.verbose, &cli.command) {
        (0, Command::Serve { .. }) => "ec2_ssh_proxy=info",
        (0, _) => "ec2_ssh_proxy=warn",
        (1, _) => "ec2_ssh_proxy=debug",
        _ => "ec2_ssh_proxy=trace,russh=debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
