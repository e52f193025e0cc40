//! The command line: subcommands, global options and their help text.
//! The help is the manual, so each option says what it does and what it defaults to.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{self, Config};

/// SSH proxy for EC2 hosts: logs in to the instance with your keyring, finds the key it
/// really accepts when the expected one is refused, and relays the whole session.
///
/// Jump-host mode:     ec2-ssh-proxy serve      then  ssh -J localhost:2222 ec2-user@HOST
/// ProxyCommand mode:  ProxyCommand ec2-ssh-proxy connect %h %p   (in ~/.ssh/config)
///
/// Either way, trust the proxy once:  ec2-ssh-proxy ca >> ~/.ssh/known_hosts
#[derive(Debug, Parser)]
#[command(name = "ec2-ssh-proxy", version, verbatim_doc_comment)]
pub struct Cli {
    #[command(flatten)]
    pub globals: Globals,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Globals {
    /// Config file (TOML).
    ///
    /// Default: ~/.config/ec2-ssh-proxy/config.toml; when that file does not exist the
    /// built-in defaults apply. A file named here must exist.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Directory for the proxy's own host key, its local CA key, pinned upstream host keys and
    /// the diagnostic log.
    ///
    /// Default: $XDG_STATE_HOME/ec2-ssh-proxy, i.e. ~/.local/state/ec2-ssh-proxy.
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// More log output on stderr (-v debug, -vv trace). RUST_LOG overrides it.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl Globals {
    pub fn load_config(&self) -> anyhow::Result<Config> {
        match &self.config {
            Some(path) => Config::load(path, true),
            None => Config::load(&Config::default_path(), false),
        }
    }

    pub fn state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(config::default_state_dir)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the jump-host daemon: `ssh -J localhost:2222 USER@HOST`.
    ///
    /// Clients authenticate with a key listed in `client_keys`. Only destinations the proxy
    /// knows (an EC2 instance the inventory finds, or a [[hosts]] entry) are relayed;
    /// anything else is refused, so the proxy is never an open relay. A client that has not
    /// logged in within `login_grace_time` (default 120 s) is dropped, as sshd does.
    Serve {
        /// Address to listen on (default: `listen` from the config, 127.0.0.1:2222).
        /// A non-loopback address exposes the proxy to the network and is logged as a warning.
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
    /// ProxyCommand mode over stdin/stdout, no daemon needed.
    ///
    /// In ~/.ssh/config:
    ///     Host web-* i-*
    ///         ProxyCommand ec2-ssh-proxy connect %h %p
    #[command(verbatim_doc_comment)]
    Connect {
        /// Host as the user typed it (%h).
        host: String,
        /// Port as the user gave it (%p).
        #[arg(default_value_t = 22)]
        port: u16,
        /// Look the host up again instead of trusting the lookup cache (`cache_ttl`).
        #[arg(long)]
        refresh: bool,
    },
    /// Print the `@cert-authority` line to add to ~/.ssh/known_hosts.
    ///
    /// The proxy presents host certificates signed by its local CA, so this one line lets
    /// OpenSSH trust every host reached through it (and the jump host itself):
    ///     ec2-ssh-proxy ca >> ~/.ssh/known_hosts
    #[command(verbatim_doc_comment)]
    Ca,
    /// Find out why a login fails (or which key works) without opening a session.
    ///
    /// Runs the same plan as a real connection: resolves the host (EC2 or [[hosts]]),
    /// tries the expected key, and when the host refuses it asks the host which of the
    /// known keys (keyring, EC2 key pairs, the AMI's lineage) it accepts. Prints the
    /// verdict, the explanation and the fixes, and records it in the diagnostic log.
    ///
    /// Exit status: 0 when a key the proxy can use is accepted, 1 when not, 2 on usage
    /// errors.
    ///
    /// Examples:
    ///     ec2-ssh-proxy diagnose ec2-user@i-0123456789abcdef0
    ///     ec2-ssh-proxy diagnose admin@10.0.0.5 -p 2222 --json
    #[command(verbatim_doc_comment)]
    Diagnose {
        /// [USER@]HOST as you would give it to ssh; USER defaults to your login name.
        destination: String,
        /// Port on the host.
        #[arg(short, long, default_value_t = 22)]
        port: u16,
        /// Print the diagnostic record as one JSON object instead of the explanation.
        #[arg(long)]
        json: bool,
    },
    /// Show the diagnostic log: for each connection, the keys tried, the one the instance
    /// accepted, the verdict and what to do about it.
    ///
    /// Records are printed oldest first, so the newest is at the bottom. The log is the file
    /// named by `diagnostic_log` in the config, by default diagnostics.jsonl in the state
    /// directory; it is rotated to FILE.1 past 10 MiB, and both are read.
    ///
    /// Examples:
    ///     ec2-ssh-proxy log --last 1               what happened on the last connection
    ///     ec2-ssh-proxy log --host web-1 --last 5  the last five connections to web-1
    ///     ec2-ssh-proxy log --verdict ami-baked-key --json | jq .instance_id
    #[command(verbatim_doc_comment)]
    Log {
        /// Show only the newest N records (counted after --host and --verdict).
        #[arg(long, value_name = "N")]
        last: Option<usize>,
        /// Only connections to HOST: the host as typed (ignoring case, as ssh does) or the
        /// instance id it resolved to.
        #[arg(long, value_name = "HOST")]
        host: Option<String>,
        /// Only records with this verdict code: ok, ami-baked-key, other-key-accepted,
        /// wrong-user, no-accepted-key, private-key-missing, no-key-pair,
        /// instance-not-running, unknown-host, unreachable, host-key-changed, aws-error.
        #[arg(long, value_name = "VERDICT")]
        verdict: Option<String>,
        /// Print the records as stored, one JSON object per line (for jq or a bug report).
        /// Notes such as "no diagnostic records yet" then go to stderr.
        #[arg(long)]
        json: bool,
        /// After the records so far, keep printing new ones as connections are made, until
        /// Ctrl-C. --host and --verdict apply; --last only limits the records so far.
        #[arg(long)]
        follow: bool,
    },
    /// Play the whole refused-key story on this machine in a few seconds; start here.
    ///
    /// An AMI made in account 111111111111 (key pair 'old-key') is shared with account
    /// 222222222222, which launches an instance from it with key pair 'new-key'. The
    /// instance still accepts only 'old-key', so `ssh -i new-key.pem` is refused.
    ///
    /// The demo runs the real proxy over a temporary keyring, a file inventory describing
    /// that story, and a throwaway SSH server on 127.0.0.1 playing the instance; then an
    /// SSH client logs in through the proxy with 'new-key' and runs a command. It prints the
    /// scenario, which keys were refused and accepted, the proxy's explanation, and the
    /// command's output. No AWS account, no sshd, nothing outside 127.0.0.1; the temporary
    /// files are removed afterwards. Exit status: 0 when the command ran, 1 otherwise.
    Demo,
    /// Inspect the keys the proxy logs in upstream with.
    Keyring {
        #[command(subcommand)]
        command: KeyringCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyringCommand {
    /// Every key the proxy can use (file or ssh-agent): type, bits, SHA256 fingerprint,
    /// comment; and every file it skipped, with the reason.
    List,
}
