//! The TOML configuration file: built-in defaults, parsing, and validation.
//! Every error names the file, the key, and what was expected, so a typo is fixed in one read.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;
use toml::Spanned;

use crate::inventory::AddressPreference;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:2222";
/// Ten minutes: long enough that a burst of `connect` processes costs one lookup, short
/// enough that a replaced instance is noticed.
pub const DEFAULT_CACHE_TTL_SECS: u64 = 600;

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

/// A `host:port` pair; IPv6 hosts are stored without brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

/// Why a `host:port` string was refused; shown after the config key that held it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HostPortError {
    #[error("expected HOST:PORT, e.g. \"127.0.0.1:2201\"")]
    Shape,
    #[error("expected a port number 1-65535 after the last ':'")]
    Port,
    #[error("an IPv6 address needs brackets, e.g. \"[::1]:2201\"")]
    BareIpv6,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for HostPort {
    type Err = HostPortError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or(HostPortError::Shape)?;
            let port = after.strip_prefix(':').ok_or(HostPortError::Shape)?;
            (host, port)
        } else {
            let (host, port) = s.rsplit_once(':').ok_or(HostPortError::Shape)?;
            if host.contains(':') {
                return Err(HostPortError::BareIpv6);
            }
            (host, port)
        };
        if host.is_empty() || host.chars().any(char::is_whitespace) {
            return Err(HostPortError::Shape);
        }
        // Port 0 means "any port" to bind() and can never be dialled.
        let port = match port.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => return Err(HostPortError::Port),
        };
        Ok(HostPort {
            host: host.to_string(),
            port,
        })
    }
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
            keys: Vec::new(),
            diagnostic_log: None,
            source: None,
        }
    }
}

/// The file as written: every key optional so that defaults fill the gaps. Add new keys here
/// and in `RawConfig::into_config`; `deny_unknown_fields` lists them in typo errors by itself.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<Spanned<String>>,
    client_keys: Option<Vec<String>>,
    keyring: Option<Vec<String>>,
    ca_patterns: Option<Spanned<String>>,
    #[serde(default)]
    hosts: Vec<RawHost>,
    inventory: Option<Spanned<String>>,
    regions: Option<Vec<Spanned<String>>>,
    address: Option<Spanned<String>>,
    #[serde(default)]
    accounts: std::collections::BTreeMap<String, RawAccount>,
    cache_ttl: Option<Spanned<u64>>,
    #[serde(default)]
    keys: Vec<RawKeyLink>,
    diagnostic_log: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeyLink {
    path: String,
    key_pair: Spanned<String>,
    account: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    profile: Spanned<String>,
    #[serde(default)]
    regions: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    #[serde(rename = "match")]
    pattern: Spanned<String>,
    dial: Spanned<String>,
    instance: Option<Spanned<String>>,
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

impl RawConfig {
    fn into_config(self, text: &str, source: &Path) -> Result<Config> {
        let file = source.display();
        let mut config = Config {
            source: Some(source.to_path_buf()),
            ..Config::default()
        };
        if let Some(listen) = self.listen {
            config.listen = listen.get_ref().parse().map_err(|_| {
                anyhow::anyhow!(
                    "{file}: 'listen' = {:?} at line {}: expected IP:PORT, e.g. \"{DEFAULT_LISTEN}\"",
                    listen.get_ref(),
                    line_of(text, listen.span().start)
                )
            })?;
        }
        if let Some(patterns) = self.client_keys {
            config.client_keys = patterns;
        }
        if let Some(paths) = self.keyring {
            config.keyring = paths.iter().map(|p| expand_tilde(p)).collect();
        }
        if let Some(ca) = self.ca_patterns {
            let value = ca.get_ref();
            // The value goes verbatim into a known_hosts `@cert-authority` line, where
            // whitespace would end the pattern field.
            if value.is_empty() || value.chars().any(char::is_whitespace) {
                anyhow::bail!(
                    "{file}: 'ca_patterns' = {value:?} at line {}: expected host patterns separated by commas without spaces, e.g. \"*.internal,i-*\"",
                    line_of(text, ca.span().start)
                );
            }
            config.ca_patterns = value.clone();
        }
        for (index, host) in self.hosts.into_iter().enumerate() {
            config.hosts.push(host.into_entry(index + 1, text, &file)?);
        }
        let at = |span: std::ops::Range<usize>| line_of(text, span.start);
        if let Some(inventory) = self.inventory {
            let value = inventory.get_ref();
            config.inventory = match value.as_str() {
                "aws" => InventorySource::Aws,
                "none" => InventorySource::None,
                other => match other.strip_prefix("file:") {
                    Some(path) if !path.is_empty() => InventorySource::File(expand_tilde(path)),
                    _ => anyhow::bail!(
                        "{file}: 'inventory' = {value:?} at line {}: expected \"aws\", \"file:PATH\" or \"none\"",
                        at(inventory.span())
                    ),
                },
            };
        }
        if let Some(regions) = self.regions {
            config.regions = regions
                .into_iter()
                .map(|r| check_region(r, "regions", text, &file))
                .collect::<Result<_>>()?;
        }
        if let Some(address) = self.address {
            config.address = match address.get_ref().as_str() {
                "public" => AddressPreference::Public,
                "private" => AddressPreference::Private,
                "ipv6" => AddressPreference::Ipv6,
                other => anyhow::bail!(
                    "{file}: 'address' = {other:?} at line {}: expected \"public\", \"private\" or \"ipv6\"",
                    at(address.span())
                ),
            };
        }
        for (id, account) in self.accounts {
            if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
                anyhow::bail!(
                    "{file}: [accounts.\"{id}\"] at line {}: expected a 12-digit AWS account id, e.g. [accounts.\"111111111111\"]",
                    at(account.profile.span())
                );
            }
            if account.profile.get_ref().trim().is_empty() {
                anyhow::bail!(
                    "{file}: [accounts.\"{id}\"] 'profile' at line {}: expected the name of a profile in ~/.aws/config",
                    at(account.profile.span())
                );
            }
            let regions = account
                .regions
                .into_iter()
                .map(|r| check_region(r, &format!("[accounts.\"{id}\"] regions"), text, &file))
                .collect::<Result<_>>()?;
            config.accounts.push(Account {
                id,
                profile: account.profile.into_inner(),
                regions,
            });
        }
        for (index, key) in self.keys.into_iter().enumerate() {
            let n = index + 1;
            if key.key_pair.get_ref().trim().is_empty() {
                anyhow::bail!(
                    "{file}: [[keys]] #{n} 'key_pair' at line {}: expected the key pair's name in EC2",
                    at(key.key_pair.span())
                );
            }
            let account = match key.account {
                Some(a) if a.get_ref().len() != 12 || !a.get_ref().bytes().all(|b| b.is_ascii_digit()) => anyhow::bail!(
                    "{file}: [[keys]] #{n} 'account' = {:?} at line {}: expected a 12-digit AWS account id",
                    a.get_ref(),
                    at(a.span())
                ),
                Some(a) => Some(a.into_inner()),
                None => None,
            };
            config.keys.push(DeclaredLink {
                path: expand_tilde(&key.path),
                key_pair: key.key_pair.into_inner(),
                account,
            });
        }
        if let Some(ttl) = self.cache_ttl {
            config.cache_ttl = Duration::from_secs(*ttl.get_ref());
        }
        if let Some(log) = self.diagnostic_log {
            if log.get_ref().trim().is_empty() {
                anyhow::bail!(
                    "{file}: 'diagnostic_log' at line {}: expected a file path, e.g. \"~/ec2-ssh-proxy.jsonl\"",
                    at(log.span())
                );
            }
            config.diagnostic_log = Some(expand_tilde(log.get_ref()));
        }
        Ok(config)
    }
}

impl RawHost {
    fn into_entry(self, number: usize, text: &str, file: &dyn fmt::Display) -> Result<HostEntry> {
        let at = |span: std::ops::Range<usize>| line_of(text, span.start);
        let pattern = self.pattern.get_ref();
        if pattern.trim().is_empty() {
            anyhow::bail!(
                "{file}: [[hosts]] #{number} 'match' at line {}: expected a host name or pattern, e.g. \"i-0abc*\"",
                at(self.pattern.span())
            );
        }
        if let Err(e) = glob::Pattern::new(pattern) {
            anyhow::bail!(
                "{file}: [[hosts]] #{number} 'match' = {pattern:?} at line {}: not a valid pattern ({})",
                at(self.pattern.span()),
                e.msg
            );
        }
        let dial = self.dial.get_ref().parse::<HostPort>().map_err(|e| {
            anyhow::anyhow!(
                "{file}: [[hosts]] #{number} 'dial' = {:?} at line {}: {e}",
                self.dial.get_ref(),
                at(self.dial.span())
            )
        })?;
        let instance = match self.instance {
            Some(id) if !is_instance_id(id.get_ref()) => anyhow::bail!(
                "{file}: [[hosts]] #{number} 'instance' = {:?} at line {}: expected an instance id, \"i-\" and 8 or 17 hex digits, e.g. \"i-0abc1234def567890\"",
                id.get_ref(),
                at(id.span())
            ),
            Some(id) => Some(id.into_inner()),
            None => None,
        };
        Ok(HostEntry {
            pattern: pattern.clone(),
            dial,
            instance,
        })
    }
}

/// Region names look like `us-east-1` or `ap-southeast-2`: letters, digits and dashes.
fn check_region(
    region: Spanned<String>,
    key: &str,
    text: &str,
    file: &dyn fmt::Display,
) -> Result<String> {
    let value = region.get_ref();
    let shaped = value.split('-').count() >= 3
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !shaped {
        anyhow::bail!(
            "{file}: {key} has {value:?} at line {}: expected an AWS region name, e.g. \"us-east-1\"",
            line_of(text, region.span().start)
        );
    }
    Ok(region.into_inner())
}

/// EC2 instance ids are "i-" followed by 8 (before 2016) or 17 lowercase hex digits.
fn is_instance_id(id: &str) -> bool {
    id.strip_prefix("i-").is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17)
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// toml's Display is a multi-line snippet; turn it into one sentence that names the file.
fn describe_toml_error(e: &toml::de::Error, text: &str, source: &Path) -> String {
    let file = source.display();
    // serde says "sequence" where a TOML user writes an array.
    let message = e
        .message()
        .trim_end()
        .replace("expected a sequence", "expected an array like [\"...\"]");
    let message = message.as_str();
    let line = e.span().map(|span| line_of(text, span.start));
    // serde words it "unknown field `x`, expected one of `a`, `b`"; in a config file these are keys.
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((key, expected)) = rest.split_once('`') {
            let expected = expected
                .trim_start_matches(", expected ")
                .trim_start_matches("one of ")
                .replace('`', "");
            let at = line.map(|l| format!(" at line {l}")).unwrap_or_default();
            return format!("{file}: unknown key '{key}'{at} (expected one of: {expected})");
        }
    }
    // serde's "missing field `dial`": name it as a key, with the table it belongs in.
    if let Some(key) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        let table = match line {
            Some(l) => format!(
                " in the table at line {l} ({})",
                text.lines().nth(l - 1).unwrap_or("").trim()
            ),
            None => String::new(),
        };
        return format!("{file}: missing key '{key}'{table}");
    }
    match line {
        Some(l) => {
            let snippet = text.lines().nth(l - 1).unwrap_or("").trim();
            format!("{file}: line {l} ({snippet}): {message}")
        }
        None => format!("{file}: {message}"),
    }
}

/// 1-based line number of a byte offset, for error messages.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

/// "~" and "~/..." become $HOME and $HOME/...; other paths (and "~user") are left alone.
pub fn expand_tilde(p: &str) -> PathBuf {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
    match (p, home) {
        ("~", Some(home)) => PathBuf::from(home),
        (p, Some(home)) if p.starts_with("~/") => PathBuf::from(home).join(&p[2..]),
        (p, _) => PathBuf::from(p),
    }
}

/// $XDG_STATE_HOME/ec2-ssh-proxy, else ~/.local/state/ec2-ssh-proxy.
pub fn default_state_dir() -> PathBuf {
    xdg_dir("XDG_STATE_HOME", "~/.local/state").join("ec2-ssh-proxy")
}

/// The XDG base directory spec says relative values are invalid and must be ignored.
fn xdg_dir(var: &str, fallback: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| expand_tilde(fallback))
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
        let config = parse(include_str!("../config/ec2-ssh-proxy.toml")).unwrap();
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
    }

    #[test]
    fn example_file_documents_the_real_defaults() {
        // Uncomment every "#key = ..." and "#[[hosts]]" line: the documented defaults must be
        // the built-in ones, and the [[hosts]] examples must be valid.
        let uncommented: String = include_str!("../config/ec2-ssh-proxy.toml")
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
            "/x/config.toml: unknown key 'lisen' at line 3 (expected one of: listen, client_keys, keyring, ca_patterns, hosts, inventory, regions, address, accounts, cache_ttl, keys, diagnostic_log)"
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
    fn host_port_forms() {
        assert_eq!(
            "example.com:22".parse::<HostPort>(),
            Ok(HostPort {
                host: "example.com".into(),
                port: 22
            })
        );
        assert_eq!("::1:22".parse::<HostPort>(), Err(HostPortError::BareIpv6));
        assert_eq!("h:0".parse::<HostPort>(), Err(HostPortError::Port));
        assert_eq!("h:70000".parse::<HostPort>(), Err(HostPortError::Port));
        assert_eq!(":22".parse::<HostPort>(), Err(HostPortError::Shape));
        assert_eq!("[::1]22".parse::<HostPort>(), Err(HostPortError::Shape));
    }

    #[test]
    fn instance_ids() {
        assert!(is_instance_id("i-0abc1234"));
        assert!(is_instance_id("i-0123456789abcdef0"));
        assert!(!is_instance_id("i-0123456789ABCDEF0"));
        assert!(!is_instance_id("i-0abc123"));
        assert!(!is_instance_id("ami-0abc1234"));
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

    #[test]
    fn tilde_expansion() {
        let home = PathBuf::from(std::env::var_os("HOME").unwrap());
        assert_eq!(expand_tilde("~"), home);
        assert_eq!(expand_tilde("~/.ssh"), home.join(".ssh"));
        assert_eq!(expand_tilde("~bob/x"), PathBuf::from("~bob/x"));
        assert_eq!(expand_tilde("/abs"), PathBuf::from("/abs"));
    }
}
