//! The TOML configuration file: built-in defaults, parsing, and validation.
//! Every error names the file, the key, and what was expected, so a typo is fixed in one read.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::inventory::AddressPreference;

mod host_port;
mod paths;
mod raw;

pub use host_port::{HostPort, HostPortError};
pub use paths::{default_state_dir, expand_tilde};

use paths::xdg_dir;
use raw::{describe_toml_error, RawConfig};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:2222";
/// Ten minutes: long enough that a burst of `connect` processes costs one lookup, short
/// enough that a replaced instance is noticed.
pub const DEFAULT_CACHE_TTL_SECS: u64 = 600;
/// As OpenSSH's LoginGraceTime.
pub const DEFAULT_LOGIN_GRACE_SECS: u64 = 120;

/// What the proxy runs with: the file's values over the built-in defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the jump-host server accepts `ssh -J` clients; loopback by default because the
    /// proxy holds the user's keys and must not be reachable from the network unasked.
    pub listen: SocketAddr,
    /// Patterns for the public keys allowed to use the jump host, kept raw so that
    /// `client_keys.rs` can report which pattern matched nothing.
    pub client_keys: Vec<String>,
    /// Files or directories holding the private keys offered upstream, tilde-expanded.
    pub keyring: Vec<PathBuf>,
    /// Host patterns the local CA signs host certificates for (the user's `@cert-authority` line).
    pub ca_patterns: String,
    /// Per-host overrides, first match wins as in ssh_config.
    pub hosts: Vec<HostEntry>,
    /// Where hosts are resolved to instances: the EC2 API, a file, or nowhere.
    pub inventory: InventorySource,
    /// Regions searched in every account without regions of its own; empty = the
    /// profile's region (aws-config's chain).
    pub regions: Vec<String>,
    /// Which instance address to dial.
    pub address: AddressPreference,
    /// Accounts beyond the default credential chain's, each reached through a profile:
    /// where AMI lineage leads when an AMI was shared from another account.
    pub accounts: Vec<Account>,
    /// How long `connect` (a new process per connection) trusts its on-disk lookups.
    pub cache_ttl: Duration,
    /// How long a client of `serve` has to log in before it is dropped; None = no limit.
    pub login_grace_time: Option<Duration>,
    /// `[[keys]]`: links from key files to AWS key pairs stated by the user, for keys no
    /// fingerprint can tie (e.g. a pair whose public key is not retrievable).
    pub keys: Vec<DeclaredLink>,
    /// `diagnostic_log`, tilde-expanded; None = `diagnostics.jsonl` in the state directory,
    /// which is only known once `--state-dir` is (see `diagnostic_log_path`).
    pub diagnostic_log: Option<PathBuf>,
    /// The file this came from, so later errors can point at it; None = built-in defaults.
    pub source: Option<PathBuf>,
}

/// `inventory = "aws" | "file:PATH" | "none"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InventorySource {
    /// The EC2 API through aws-config's standard chain (env vars, profiles, SSO).
    Aws,
    /// A TOML description of instances, images and key pairs (offline use, VM templates).
    File(PathBuf),
    /// Only `[[hosts]]` entries are known.
    None,
}

/// One `[[keys]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredLink {
    /// The private key file, tilde-expanded.
    pub path: PathBuf,
    /// The key pair's name in EC2.
    pub key_pair: String,
    /// The account it lives in; None = any account.
    pub account: Option<String>,
}

/// One `[accounts."ID"]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The 12-digit account id.
    pub id: String,
    /// The AWS profile (in ~/.aws/config) whose credentials reach this account.
    pub profile: String,
    /// Regions to search there; empty = the top-level `regions`.
    pub regions: Vec<String>,
}

/// One `[[hosts]]` table: how to reach a host the inventory cannot resolve (or resolves wrongly).
#[derive(Debug, Clone, PartialEq)]
pub struct HostEntry {
    /// TOML `match`: an exact host name or an ssh_config-style glob (`*`, `?`, `[..]`).
    pub pattern: String,
    /// TOML `dial`: the address to connect to instead of the resolved one (tunnels, test sshd).
    pub dial: HostPort,
    /// TOML `instance`: the instance id, so host-key pinning and diagnosis work without the EC2 API.
    pub instance: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 2222)),
            client_keys: vec![
                "~/.ssh/authorized_keys".to_string(),
                "~/.ssh/*.pub".to_string(),
            ],
            keyring: vec![expand_tilde("~/.ssh")],
            ca_patterns: "*".to_string(),
            hosts: Vec::new(),
            inventory: InventorySource::Aws,
            regions: Vec::new(),
            address: AddressPreference::Public,
            accounts: Vec::new(),
            cache_ttl: Duration::from_secs(DEFAULT_CACHE_TTL_SECS),
            login_grace_time: Some(Duration::from_secs(DEFAULT_LOGIN_GRACE_SECS)),
            keys: Vec::new(),
            diagnostic_log: None,
            source: None,
        }
    }
}

impl Config {
    /// `path`: the file; `explicit`: true when the user passed --config (then a missing file is
    /// an error); when not explicit, a missing file means defaults.
    pub fn load(path: &Path, explicit: bool) -> Result<Config> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                return Ok(Config::default());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                anyhow::bail!(
                    "{}: config file not found (given with --config; create it from config/ec2-ssh-proxy.toml)",
                    path.display()
                );
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("{}: cannot read config file", path.display()))
            }
        };
        Config::parse(&text, path)
    }

    /// Parse `text` as if read from `source` (named in every error).
    pub fn parse(text: &str, source: &Path) -> Result<Config> {
        let raw: RawConfig = toml::from_str(text)
            .map_err(|e| anyhow::anyhow!(describe_toml_error(&e, text, source)))?;
        raw.into_config(text, source)
    }

    /// $XDG_CONFIG_HOME/ec2-ssh-proxy/config.toml, else ~/.config/ec2-ssh-proxy/config.toml.
    pub fn default_path() -> PathBuf {
        xdg_dir("XDG_CONFIG_HOME", "~/.config").join("ec2-ssh-proxy/config.toml")
    }

    /// Where diagnostic records go: `diagnostic_log`, else `diagnostics.jsonl` in `state_dir`.
    pub fn diagnostic_log_path(&self, state_dir: &Path) -> PathBuf {
        self.diagnostic_log
            .clone()
            .unwrap_or_else(|| state_dir.join("diagnostics.jsonl"))
    }

    /// The profile configured for `account` (`[accounts."ID"] profile`), if any.
    pub fn profile_for(&self, account: &str) -> Option<&str> {
        self.accounts
            .iter()
            .find(|a| a.id == account)
            .map(|a| a.profile.as_str())
    }

    /// First `[[hosts]]` entry whose pattern matches `host`, ignoring case as ssh_config does.
    pub fn host_entry(&self, host: &str) -> Option<&HostEntry> {
        let options = glob::MatchOptions {
            case_sensitive: false,
            require_literal_separator: false,
            require_literal_leading_dot: false,
        };
        self.hosts.iter().find(|entry| {
            glob::Pattern::new(&entry.pattern)
                .map(|p| p.matches_with(host, options))
                .unwrap_or(false)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(text, Path::new("/x/config.toml"))
    }

    fn error(text: &str) -> String {
        format!("{:#}", parse(text).unwrap_err())
    }

    #[test]
    fn empty_file_gives_defaults() {
        let config = parse("").unwrap();
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(
            config.client_keys,
            ["~/.ssh/authorized_keys", "~/.ssh/*.pub"]
        );
        assert_eq!(config.keyring, [expand_tilde("~/.ssh")]);
        assert_eq!(config.ca_patterns, "*");
        assert!(config.hosts.is_empty());
        assert_eq!(config.source.as_deref(), Some(Path::new("/x/config.toml")));
    }

    #[test]
    fn example_file_parses() {
        let config = parse(include_str!("../../config/ec2-ssh-proxy.toml")).unwrap();
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
    }

    #[test]
    fn example_file_documents_the_real_defaults() {
        // Uncomment every "#key = ..." and "#[[hosts]]" line: the documented defaults must be
        // the built-in ones, and the [[hosts]] examples must be valid.
        let uncommented: String = include_str!("../../config/ec2-ssh-proxy.toml")
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest) if !rest.starts_with([' ', '#']) && !rest.is_empty() => rest,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let config = parse(&uncommented).unwrap();
        let defaults = Config::default();
        assert_eq!(config.listen, defaults.listen);
        assert_eq!(config.client_keys, defaults.client_keys);
        assert_eq!(config.keyring, defaults.keyring);
        assert_eq!(config.ca_patterns, defaults.ca_patterns);
        assert_eq!(config.diagnostic_log, defaults.diagnostic_log);
        assert_eq!(config.login_grace_time, defaults.login_grace_time);
        assert_eq!(config.hosts.len(), 2);
        assert_eq!(config.host_entry("web-staging").unwrap().dial.port, 2201);
    }

    #[test]
    fn all_keys_parse() {
        let config = parse(
            r#"
listen = "0.0.0.0:2022"
client_keys = ["/etc/keys/*.pub"]
keyring = ["/keys", "~/aws.pem"]
ca_patterns = "*.internal,i-*"

[[hosts]]
match = "web"
dial = "127.0.0.1:2201"
instance = "i-0123456789abcdef0"

[[hosts]]
match = "db-*"
dial = "[::1]:22"
"#,
        )
        .unwrap();
        assert_eq!(config.listen.to_string(), "0.0.0.0:2022");
        assert_eq!(config.client_keys, ["/etc/keys/*.pub"]);
        assert_eq!(config.keyring[0], PathBuf::from("/keys"));
        assert_eq!(config.keyring[1], expand_tilde("~/aws.pem"));
        assert_eq!(config.ca_patterns, "*.internal,i-*");
        assert_eq!(
            config.hosts[0],
            HostEntry {
                pattern: "web".into(),
                dial: HostPort {
                    host: "127.0.0.1".into(),
                    port: 2201
                },
                instance: Some("i-0123456789abcdef0".into()),
            }
        );
        assert_eq!(config.hosts[1].dial.host, "::1");
        assert_eq!(config.hosts[1].dial.port, 22);
    }

    #[test]
    fn inventory_accounts_and_regions_parse() {
        let config = parse(
            r#"
inventory = "file:~/inv.toml"
regions = ["us-east-1", "eu-west-1"]
address = "private"
cache_ttl = 60
login_grace_time = 30

[accounts."111111111111"]
profile = "old-account"
regions = ["ap-southeast-2"]

[accounts."222222222222"]
profile = "new-account"
"#,
        )
        .unwrap();
        assert_eq!(
            config.inventory,
            InventorySource::File(expand_tilde("~/inv.toml"))
        );
        assert_eq!(config.regions, ["us-east-1", "eu-west-1"]);
        assert_eq!(config.address, AddressPreference::Private);
        assert_eq!(config.cache_ttl, Duration::from_secs(60));
        assert_eq!(config.login_grace_time, Some(Duration::from_secs(30)));
        assert_eq!(
            parse("login_grace_time = 0").unwrap().login_grace_time,
            None,
            "0 = no limit"
        );
        assert_eq!(
            config.accounts[0],
            Account {
                id: "111111111111".into(),
                profile: "old-account".into(),
                regions: vec!["ap-southeast-2".into()],
            }
        );
        assert!(config.accounts[1].regions.is_empty());
        assert_eq!(config.profile_for("222222222222"), Some("new-account"));
        assert_eq!(config.profile_for("333333333333"), None);
        assert_eq!(
            parse("inventory = \"none\"").unwrap().inventory,
            InventorySource::None
        );
    }

    #[test]
    fn declared_key_links_parse_and_are_checked() {
        let config = parse("[[keys]]\npath = \"~/old-key.pem\"\nkey_pair = \"old-key\"\naccount = \"111111111111\"\n").unwrap();
        assert_eq!(
            config.keys,
            [DeclaredLink {
                path: expand_tilde("~/old-key.pem"),
                key_pair: "old-key".into(),
                account: Some("111111111111".into()),
            }]
        );
        assert_eq!(
            error("[[keys]]\npath = \"k\"\nkey_pair = \"x\"\naccount = \"42\""),
            "/x/config.toml: [[keys]] #1 'account' = \"42\" at line 4: expected a 12-digit AWS account id"
        );
    }

    #[test]
    fn diagnostic_log_defaults_to_the_state_dir_and_is_tilde_expanded() {
        let state = Path::new("/state");
        let defaults = parse("").unwrap();
        assert_eq!(defaults.diagnostic_log, None);
        assert_eq!(
            defaults.diagnostic_log_path(state),
            Path::new("/state/diagnostics.jsonl")
        );
        let set = parse("diagnostic_log = \"~/logs/d.jsonl\"").unwrap();
        assert_eq!(
            set.diagnostic_log_path(state),
            expand_tilde("~/logs/d.jsonl")
        );
        assert_eq!(
            error("\ndiagnostic_log = \" \""),
            "/x/config.toml: 'diagnostic_log' at line 2: expected a file path, e.g. \"~/ec2-ssh-proxy.jsonl\""
        );
    }

    #[test]
    fn bad_inventory_values_name_the_key_and_the_choices() {
        assert_eq!(
            error("inventory = \"ec2\""),
            "/x/config.toml: 'inventory' = \"ec2\" at line 1: expected \"aws\", \"file:PATH\" or \"none\""
        );
        assert_eq!(
            error("address = \"elastic\""),
            "/x/config.toml: 'address' = \"elastic\" at line 1: expected \"public\", \"private\" or \"ipv6\""
        );
        assert_eq!(
            error("\nregions = [\"us east 1\"]"),
            "/x/config.toml: regions has \"us east 1\" at line 2: expected an AWS region name, e.g. \"us-east-1\""
        );
        assert!(error("[accounts.\"1111\"]\nprofile = \"x\"")
            .contains("expected a 12-digit AWS account id"));
        assert!(
            error("[accounts.\"111111111111\"]\nprofle = \"x\"").contains("unknown key 'profle'")
        );
    }

    #[test]
    fn unknown_key_names_file_line_and_expected_keys() {
        assert_eq!(
            error("listen = \"127.0.0.1:1\"\n\nlisen = \"x\"\n"),
            "/x/config.toml: unknown key 'lisen' at line 3 (expected one of: listen, client_keys, keyring, ca_patterns, hosts, inventory, regions, address, accounts, cache_ttl, login_grace_time, keys, diagnostic_log)"
        );
        assert_eq!(
            error("[[hosts]]\nmatch = \"a\"\ndial = \"a:1\"\nport = 22\n"),
            "/x/config.toml: unknown key 'port' at line 4 (expected one of: match, dial, instance)"
        );
    }

    #[test]
    fn wrong_type_names_the_line() {
        assert_eq!(
            error("listen = 2222\n"),
            "/x/config.toml: line 1 (listen = 2222): invalid type: integer `2222`, expected a string"
        );
    }

    #[test]
    fn syntax_error_is_one_line_with_the_file() {
        let e = error("listen = \"127.0.0.1:2222\n");
        assert!(
            e.starts_with("/x/config.toml: line 1 (listen = \"127.0.0.1:2222): "),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn bad_listen() {
        assert_eq!(
            error("\nlisten = \"localhost\"\n"),
            "/x/config.toml: 'listen' = \"localhost\" at line 2: expected IP:PORT, e.g. \"127.0.0.1:2222\""
        );
    }

    #[test]
    fn bad_ca_patterns() {
        assert_eq!(
            error("ca_patterns = \"a, b\"\n"),
            "/x/config.toml: 'ca_patterns' = \"a, b\" at line 1: expected host patterns separated by commas without spaces, e.g. \"*.internal,i-*\""
        );
        assert!(error("ca_patterns = \"\"").contains("'ca_patterns' = \"\""));
    }

    #[test]
    fn bad_dial_names_the_entry() {
        let text = "[[hosts]]\nmatch = \"a\"\ndial = \"a:1\"\n\n[[hosts]]\nmatch = \"web\"\ndial = \"web:abc\"\n";
        assert_eq!(
            error(text),
            "/x/config.toml: [[hosts]] #2 'dial' = \"web:abc\" at line 7: expected a port number 1-65535 after the last ':'"
        );
        assert_eq!(
            error("[[hosts]]\nmatch = \"a\"\ndial = \"web\"\n"),
            "/x/config.toml: [[hosts]] #1 'dial' = \"web\" at line 3: expected HOST:PORT, e.g. \"127.0.0.1:2201\""
        );
    }

    #[test]
    fn missing_dial_is_reported() {
        assert_eq!(
            error("[[hosts]]\nmatch = \"a\"\n"),
            "/x/config.toml: missing key 'dial' in the table at line 1 ([[hosts]])"
        );
    }

    #[test]
    fn bad_match_and_instance() {
        assert_eq!(
            error("[[hosts]]\nmatch = \"\"\ndial = \"a:1\"\n"),
            "/x/config.toml: [[hosts]] #1 'match' at line 2: expected a host name or pattern, e.g. \"i-0abc*\""
        );
        assert_eq!(
            error("[[hosts]]\nmatch = \"a\"\ndial = \"a:1\"\ninstance = \"i-123\"\n"),
            "/x/config.toml: [[hosts]] #1 'instance' = \"i-123\" at line 4: expected an instance id, \"i-\" and 8 or 17 hex digits, e.g. \"i-0abc1234def567890\""
        );
        assert!(
            error("[[hosts]]\nmatch = \"[a\"\ndial = \"a:1\"\n").contains("not a valid pattern")
        );
    }

    #[test]
    fn first_matching_host_wins_case_insensitively() {
        let config = parse(
            "[[hosts]]\nmatch = \"web-?\"\ndial = \"a:1\"\n\n[[hosts]]\nmatch = \"WEB-*\"\ndial = \"b:2\"\n",
        )
        .unwrap();
        assert_eq!(config.host_entry("Web-1").unwrap().dial.host, "a");
        assert_eq!(config.host_entry("web-10").unwrap().dial.host, "b");
        assert!(config.host_entry("db").is_none());
    }

    #[test]
    fn load_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let config = Config::load(&path, false).unwrap();
        assert!(config.source.is_none());
        let e = format!("{:#}", Config::load(&path, true).unwrap_err());
        assert!(e.contains("config file not found"), "{e}");
        assert!(e.contains(&path.display().to_string()), "{e}");
    }

    #[test]
    fn load_reads_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:2300\"\n").unwrap();
        let config = Config::load(&path, true).unwrap();
        assert_eq!(config.listen.port(), 2300);
        assert_eq!(config.source.as_deref(), Some(path.as_path()));
    }
}
