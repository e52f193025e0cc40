//! Which AWS key pair each keyring key is: by identical public key material, by one of
//! EC2's fingerprint forms, or by the file name AWS gives downloads (`old-key.pem`). Pure,
//! so `keyring list` and the diagnosis agree on the same links.

use std::fmt;

use russh::keys::PublicKey;

use crate::config::DeclaredLink;
use crate::inventory::KeyPair;
use crate::keyring::{KeyEntry, KeySource};
use crate::keys::ec2_fingerprint::{self, link_by_name};

/// How a key was tied to a key pair, strongest evidence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkedBy {
    /// The user said so in a `[[keys]]` table.
    Declared,
    /// The key pair's public key (DescribeKeyPairs --include-public-key) is this key.
    PublicKey,
    /// EC2's fingerprint of the pair equals one computed from this key.
    Fingerprint,
    /// Only the file name matches (`NAME.pem`): a hint, not proof.
    FileName,
}

impl fmt::Display for LinkedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkedBy::Declared => "your [[keys]] entry",
            LinkedBy::PublicKey => "same public key",
            LinkedBy::Fingerprint => "EC2 fingerprint",
            LinkedBy::FileName => "file name only",
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    /// Index into the keyring's keys.
    pub key: usize,
    pub pair: KeyPair,
    pub by: LinkedBy,
}

/// Every (key, pair) link, strongest evidence per pair.
pub fn link(keys: &[KeyEntry], pairs: &[KeyPair], declared: &[DeclaredLink]) -> Vec<Link> {
    let mut links = Vec::new();
    for pair in pairs {
        let pair_key = pair
            .public_key
            .as_deref()
            .and_then(|line| PublicKey::from_openssh(line).ok());
        for (index, key) in keys.iter().enumerate() {
            let stated = declared.iter().any(|d| {
                key.source == KeySource::File(d.path.clone())
                    && d.key_pair == pair.name
                    && d.account.as_ref().is_none_or(|a| *a == pair.account)
            });
            let by = if stated {
                Some(LinkedBy::Declared)
            } else {
                evidence(key, pair, pair_key.as_ref())
            };
            if let Some(by) = by {
                links.push(Link {
                    key: index,
                    pair: pair.clone(),
                    by,
                });
            }
        }
    }
    links
}

fn evidence(key: &KeyEntry, pair: &KeyPair, pair_key: Option<&PublicKey>) -> Option<LinkedBy> {
    if pair_key.is_some_and(|p| p.key_data() == key.public.key_data()) {
        return Some(LinkedBy::PublicKey);
    }
    if let Some(aws) = &pair.fingerprint {
        let ours = ec2_fingerprint::ec2_fingerprints(key.private.as_deref(), &key.public);
        if ec2_fingerprint::matches(aws, &ours) {
            return Some(LinkedBy::Fingerprint);
        }
    }
    // A name match is only believable when nothing contradicts it.
    if pair_key.is_none() && pair.fingerprint.is_none() {
        if let KeySource::File(path) = &key.source {
            if link_by_name(path).as_deref() == Some(pair.name.as_str()) {
                return Some(LinkedBy::FileName);
            }
        }
    }
    None
}

/// Key pairs no keyring key is linked to, that still have a public key: the instance can be
/// asked whether it accepts them, though the proxy cannot log in with them.
pub fn public_only<'a>(pairs: &'a [KeyPair], links: &[Link]) -> Vec<&'a KeyPair> {
    pairs
        .iter()
        .filter(|p| p.public_key.is_some())
        .filter(|p| {
            !links.iter().any(|l| {
                l.pair.name == p.name && l.pair.account == p.account && l.pair.region == p.region
            })
        })
        .collect()
}

/// The EC2 half of `keyring list`: each key's fingerprints as EC2 prints them, the key
/// pairs it is linked to and how, the pairs known only by their public key, and which
/// lookups failed.
pub fn render(
    keys: &[KeyEntry],
    pairs: &[KeyPair],
    declared: &[DeclaredLink],
    problems: &[String],
) -> String {
    let links = link(keys, pairs, declared);
    let mut out = String::new();
    if !keys.is_empty() {
        out.push_str("EC2 view of the keyring keys:\n");
    }
    for (index, key) in keys.iter().enumerate() {
        out.push_str(&format!("  {}\n", key.label()));
        let fps = ec2_fingerprint::ec2_fingerprints(key.private.as_deref(), &key.public);
        let fps: Vec<String> = fps.iter().map(ToString::to_string).collect();
        out.push_str(&format!("    EC2 fingerprint: {}\n", fps.join(", ")));
        let mine: Vec<&Link> = links.iter().filter(|l| l.key == index).collect();
        if mine.is_empty() {
            out.push_str("    key pair: none found\n");
        }
        for l in mine {
            out.push_str(&format!(
                "    key pair: '{}' in {} ({}), linked by {}\n",
                l.pair.name,
                account_label(&l.pair.account),
                l.pair.region,
                l.by
            ));
        }
    }
    let only = public_only(pairs, &links);
    if !only.is_empty() {
        out.push_str("key pairs with no private key in the keyring (an instance can still be asked whether it accepts them):\n");
        for p in only {
            out.push_str(&format!(
                "  '{}' in {} ({})\n",
                p.name,
                account_label(&p.account),
                p.region
            ));
        }
    }
    for problem in problems {
        out.push_str(&format!("not looked up: {problem}\n"));
    }
    out
}

/// The default credential chain's account is named "default" until an instance lookup has
/// revealed its id.
fn account_label(account: &str) -> String {
    if account == crate::inventory::aws::DEFAULT_ACCOUNT {
        "the default credentials' account".to_string()
    } else {
        format!("account {account}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::fixtures::key as entry;
    use crate::inventory::KeyType;
    use russh::keys::HashAlg;
    use std::path::PathBuf;

    fn pair(name: &str, public: Option<&PublicKey>, fingerprint: Option<String>) -> KeyPair {
        KeyPair {
            name: name.into(),
            id: None,
            key_type: KeyType::Ed25519,
            fingerprint,
            public_key: public.map(|k| k.to_openssh().unwrap()),
            account: "111111111111".into(),
            region: "us-east-1".into(),
        }
    }

    #[test]
    fn links_by_public_key_fingerprint_and_name() {
        let keys = vec![entry("/k/a"), entry("/k/b"), entry("/k/old-key.pem")];
        // EC2 prints ed25519 fingerprints as base64 SHA-256 with `=` padding.
        let fp_b = format!(
            "{}=",
            keys[1]
                .public
                .fingerprint(HashAlg::Sha256)
                .to_string()
                .trim_start_matches("SHA256:")
        );
        let pairs = vec![
            pair("by-key", Some(&keys[0].public), None),
            pair("by-fp", None, Some(fp_b)),
            pair("old-key", None, None),
        ];
        let links = link(&keys, &pairs, &[]);
        let found: Vec<(usize, &str, LinkedBy)> = links
            .iter()
            .map(|l| (l.key, l.pair.name.as_str(), l.by))
            .collect();
        assert_eq!(
            found,
            [
                (0, "by-key", LinkedBy::PublicKey),
                (1, "by-fp", LinkedBy::Fingerprint),
                (2, "old-key", LinkedBy::FileName)
            ]
        );
    }

    #[test]
    fn a_declared_link_wins_for_its_account_only() {
        let keys = vec![entry("/k/legacy")];
        let mut elsewhere = pair("legacy", None, Some("00:11".into()));
        elsewhere.account = "333333333333".into();
        let pairs = vec![pair("legacy", None, Some("00:11".into())), elsewhere];
        let declared = [DeclaredLink {
            path: PathBuf::from("/k/legacy"),
            key_pair: "legacy".into(),
            account: Some("111111111111".into()),
        }];
        let links = link(&keys, &pairs, &declared);
        assert_eq!(links.len(), 1);
        assert_eq!(
            (links[0].pair.account.as_str(), links[0].by),
            ("111111111111", LinkedBy::Declared)
        );
    }

    #[test]
    fn a_name_does_not_link_against_other_evidence_and_unlinked_public_keys_remain_candidates() {
        let keys = vec![entry("/k/old-key.pem")];
        let stranger = entry("/elsewhere");
        let pairs = vec![pair("old-key", Some(&stranger.public), None)];
        let links = link(&keys, &pairs, &[]);
        assert!(links.is_empty());
        let candidates = public_only(&pairs, &links);
        assert_eq!(candidates.len(), 1);
        assert_eq!(candidates[0].name, "old-key");
    }
}
