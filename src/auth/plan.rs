//! The attempt plan: every key the proxy could offer upstream for one login, strongest
//! reason first, and the default login users an AMI suggests.

use std::collections::HashSet;
use std::path::PathBuf;

use russh::keys::{HashAlg, PublicKey};
use serde::{Deserialize, Serialize};

use crate::inventory::lineage::Lineage;
use crate::inventory::{Instance, KeyPair};
use crate::keyring::{KeyEntry, KeySource};
use crate::keys::links::Link;

/// Why a key is in the plan; the log and the explanation quote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CandidateSource {
    /// Worked last time for this (instance, user): tried first so a known case costs no probe.
    CachedWinner,
    /// Linked to the instance's launch key pair: what the console says the instance accepts.
    LaunchKeyPair,
    /// The key the user's client offered to the proxy, which the proxy can sign with.
    UserOffered,
    /// Linked to the AMI's source key pair or to a key pair of an account the AMI came from.
    Lineage,
    /// Any other keyring key.
    Keyring,
    /// A key pair's public key from EC2 with no private half here: only for asking the server.
    AwsPublicOnly,
}

/// One key the proxy may offer (or only ask about) upstream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// "SHA256:..." as sshd logs it: the identity used to deduplicate and to cache winners.
    pub fingerprint: String,
    #[serde(with = "openssh_line")]
    pub public_key: PublicKey,
    pub source: CandidateSource,
    /// False for keys known only from EC2: the server can be asked about them, not logged into.
    pub can_sign: bool,
    /// (name, account) of the key pair this key is, when known: the explanation names keys
    /// by key pair because that is what the console shows.
    pub key_pair: Option<(String, String)>,
    /// The private key file, so fixes can name `PATH.pub`; None for agent and EC2-only keys.
    pub key_file: Option<PathBuf>,
}

/// What the plan is made from; every field is data the caller already looked up.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanInput<'a> {
    pub keys: &'a [KeyEntry],
    /// Which keyring key is which key pair (`keys::links::link`).
    pub links: &'a [Link],
    /// Key pairs with public keys from the configured accounts.
    pub key_pairs: &'a [KeyPair],
    pub instance: Option<&'a Instance>,
    pub lineage: Option<&'a Lineage>,
    /// The key the user's client offered to the proxy.
    pub offered: Option<&'a PublicKey>,
    /// Fingerprint of the key that worked last time for this (instance, user).
    pub cached_winner: Option<&'a str>,
}

/// The keys to try, in the order: cached winner; launch key pair; the user's key
/// (when the proxy can sign with it); keys tied to the AMI's lineage (source key pair, then
/// the AMI owner accounts' pairs); the rest of the keyring; then EC2 public keys without a
/// private half. A key appears once, at its first (strongest) position.
pub fn attempt_plan(input: &PlanInput) -> Vec<Candidate> {
    let mut plan = Plan {
        input,
        out: Vec::new(),
        seen: HashSet::new(),
    };
    if let Some(winner) = input.cached_winner {
        if let Some(i) = input.keys.iter().position(|k| k.fingerprint() == winner) {
            plan.push_key(i, CandidateSource::CachedWinner);
        }
    }
    if let Some((name, account, region)) = launch_pair(input.instance) {
        plan.push_linked(CandidateSource::LaunchKeyPair, |p| {
            is_pair(p, name, account, region)
        });
    }
    if let Some(offered) = input.offered {
        let held = input
            .keys
            .iter()
            .position(|k| k.public.key_data() == offered.key_data());
        if let Some(i) = held {
            plan.push_key(i, CandidateSource::UserOffered);
        }
    }
    if let Some(source) = input.lineage.and_then(|l| l.source_key_pair.as_ref()) {
        plan.push_linked(CandidateSource::Lineage, |p| {
            is_pair(p, &source.name, &source.account, &source.region)
        });
    }
    let accounts = lineage_accounts(input.lineage, input.instance);
    plan.push_linked(CandidateSource::Lineage, |p| accounts.contains(&p.account));
    for i in 0..input.keys.len() {
        plan.push_key(i, CandidateSource::Keyring);
    }
    for pair in public_pairs_by_priority(input, &accounts) {
        plan.push_public_only(pair);
    }
    plan.out
}

/// The plan under construction and the fingerprints already in it.
struct Plan<'p, 'a> {
    input: &'p PlanInput<'a>,
    out: Vec<Candidate>,
    seen: HashSet<String>,
}

impl Plan<'_, '_> {
    fn push(&mut self, candidate: Candidate) {
        if self.seen.insert(candidate.fingerprint.clone()) {
            self.out.push(candidate);
        }
    }

    fn push_key(&mut self, index: usize, source: CandidateSource) {
        let Some(key) = self.input.keys.get(index) else {
            return;
        };
        let key_file = match &key.source {
            KeySource::File(path) => Some(path.clone()),
            KeySource::Agent => None,
        };
        self.push(Candidate {
            fingerprint: key.fingerprint(),
            public_key: key.public.clone(),
            source,
            // Keyring entries are usable by construction: a file key or an agent identity.
            can_sign: true,
            key_pair: best_pair(self.input, index),
            key_file,
        });
    }

    /// Every keyring key linked to a key pair that `wanted` accepts, in link order.
    fn push_linked(&mut self, source: CandidateSource, wanted: impl Fn(&KeyPair) -> bool) {
        let keys: Vec<usize> = self
            .input
            .links
            .iter()
            .filter(|l| wanted(&l.pair))
            .map(|l| l.key)
            .collect();
        for key in keys {
            self.push_key(key, source);
        }
    }

    fn push_public_only(&mut self, pair: &KeyPair) {
        let Some(public_key) = pair
            .public_key
            .as_deref()
            .and_then(|line| PublicKey::from_openssh(line).ok())
        else {
            return;
        };
        self.push(Candidate {
            fingerprint: public_key.fingerprint(HashAlg::Sha256).to_string(),
            public_key,
            source: CandidateSource::AwsPublicOnly,
            can_sign: false,
            key_pair: Some((pair.name.clone(), pair.account.clone())),
            key_file: None,
        });
    }
}

/// (name, account, region) of the instance's launch key pair.
fn launch_pair(instance: Option<&Instance>) -> Option<(&str, &str, &str)> {
    let instance = instance?;
    let name = instance.key_name.as_deref()?;
    Some((name, &instance.account, &instance.region))
}

/// Key pairs are per account and per region: a same-named pair elsewhere is another key.
fn is_pair(pair: &KeyPair, name: &str, account: &str, region: &str) -> bool {
    pair.name == name && pair.account == account && pair.region == region
}

/// Accounts the AMI came from (the source instance's first, then hop owners from oldest to
/// newest), without the instance's own account: its pairs say nothing about the AMI.
pub(crate) fn lineage_accounts(
    lineage: Option<&Lineage>,
    instance: Option<&Instance>,
) -> Vec<String> {
    let Some(lineage) = lineage else {
        return Vec::new();
    };
    let own = instance.map(|i| i.account.as_str());
    let source = lineage.source.iter().map(|s| s.account.as_str());
    let owners = lineage
        .hops
        .iter()
        .rev()
        .map(|h| h.image.owner_account.as_str());
    let mut out: Vec<String> = Vec::new();
    for account in source.chain(owners) {
        if Some(account) != own && !out.iter().any(|a| a == account) {
            out.push(account.to_string());
        }
    }
    out
}

/// The key pair to name a keyring key by: the one that matters most for this instance.
fn best_pair(input: &PlanInput, key: usize) -> Option<(String, String)> {
    let accounts = lineage_accounts(input.lineage, input.instance);
    input
        .links
        .iter()
        .filter(|l| l.key == key)
        .min_by_key(|l| pair_rank(input, &accounts, &l.pair))
        .map(|l| (l.pair.name.clone(), l.pair.account.clone()))
}

/// 0 launch pair, 1 AMI source pair, 2 an AMI owner's pair, 3 the instance account's, 4 other.
fn pair_rank(input: &PlanInput, lineage_accounts: &[String], pair: &KeyPair) -> u8 {
    let source = input.lineage.and_then(|l| l.source_key_pair.as_ref());
    if launch_pair(input.instance).is_some_and(|(n, a, r)| is_pair(pair, n, a, r)) {
        0
    } else if source.is_some_and(|s| is_pair(pair, &s.name, &s.account, &s.region)) {
        1
    } else if lineage_accounts.contains(&pair.account) {
        2
    } else if input.instance.is_some_and(|i| i.account == pair.account) {
        3
    } else {
        4
    }
}

/// EC2 public keys in probing priority: a refusal budget of 5 per connection (MaxAuthTries)
/// makes the order matter, so the pairs most likely on the instance go first.
fn public_pairs_by_priority<'a>(input: &PlanInput<'a>, accounts: &[String]) -> Vec<&'a KeyPair> {
    let source = input.lineage.and_then(|l| l.source_key_pair.as_ref());
    let mut pairs: Vec<&KeyPair> = source.into_iter().chain(input.key_pairs).collect();
    // A stable sort keeps the caller's order within a rank.
    pairs.sort_by_key(|p| pair_rank(input, accounts, p));
    pairs
}

/// The login users AMIs ship with, in the order to ask about them; the AMI's name or
/// platform moves its distribution's user first (AWS "Manage system users" table).
pub fn default_users(ami_name: Option<&str>, platform: Option<&str>) -> Vec<&'static str> {
    const USERS: [&str; 8] = [
        "ec2-user", "ubuntu", "admin", "debian", "centos", "fedora", "rocky", "bitnami",
    ];
    // Bitnami first: its images carry the base distribution's name too.
    const HINTS: [(&str, &[&str]); 10] = [
        ("bitnami", &["bitnami"]),
        ("ubuntu", &["ubuntu"]),
        ("debian", &["admin", "debian"]),
        ("centos", &["centos", "ec2-user"]),
        ("fedora", &["fedora"]),
        ("rocky", &["rocky"]),
        ("amzn", &["ec2-user"]),
        ("al2023", &["ec2-user"]),
        ("amazon linux", &["ec2-user"]),
        ("rhel", &["ec2-user"]),
    ];
    let text = format!("{} {}", ami_name.unwrap_or(""), platform.unwrap_or("")).to_lowercase();
    let text = text.replace("red hat", "rhel");
    let first: &[&str] = HINTS
        .iter()
        .find(|(needle, _)| text.contains(needle))
        .map_or(&[], |(_, users)| users);
    let mut out: Vec<&'static str> = first.to_vec();
    out.extend(USERS.iter().filter(|u| !first.contains(u)));
    out
}

/// Public keys as OpenSSH lines in the log: readable, and what `authorized_keys` holds.
mod openssh_line {
    use russh::keys::PublicKey;
    use serde::{de::Error as _, ser::Error as _, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(key: &PublicKey, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&key.to_openssh().map_err(S::Error::custom)?)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PublicKey, D::Error> {
        let line = String::deserialize(d)?;
        PublicKey::from_openssh(&line).map_err(D::Error::custom)
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
