//! The file as written, and its validation into a [`Config`]: every error names the file,
//! the key and what was expected.

use std::fmt;
use std::path::Path;

use anyhow::Result;
use serde::Deserialize;
use toml::Spanned;

use super::*;

/// The file as written: every key optional so that defaults fill the gaps. Add new keys here
/// and in `RawConfig::into_config`; `deny_unknown_fields` lists them in typo errors by itself.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
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
    login_grace_time: Option<Spanned<u64>>,
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

impl RawConfig {
    pub(super) fn into_config(self, text: &str, source: &Path) -> Result<Config> {
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
        if let Some(grace) = self.login_grace_time {
            // 0 means no limit, as LoginGraceTime 0 does for sshd.
            config.login_grace_time =
                Some(Duration::from_secs(*grace.get_ref())).filter(|d| !d.is_zero());
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
pub(super) fn describe_toml_error(e: &toml::de::Error, text: &str, source: &Path) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids() {
        assert!(is_instance_id("i-0abc1234"));
        assert!(is_instance_id("i-0123456789abcdef0"));
        assert!(!is_instance_id("i-0123456789ABCDEF0"));
        assert!(!is_instance_id("i-0abc123"));
        assert!(!is_instance_id("ami-0abc1234"));
    }
}
