//! The key that last worked for each (host, login user), so the next connection tries it
//! first and probes nothing. Kept in the state directory with what made it the winner
//! (its key pair, the AMI lineage), so the next verdict is the same without asking EC2;
//! a key that stops working is forgotten and the attempt plan runs again.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::auth::Candidate;
use crate::inventory::lineage::Lineage;

/// What is remembered about the key that worked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Winner {
    /// The key as the plan saw it: fingerprint, public key, key pair it belongs to.
    pub candidate: Candidate,
    /// The AMI lineage that tied it to the instance, when there was one.
    pub lineage: Option<Lineage>,
}

pub struct Winners {
    path: PathBuf,
}

fn slot(pin_id: &str, user: &str) -> String {
    format!("{pin_id} {user}")
}

impl Winners {
    pub fn new(path: PathBuf) -> Winners {
        Winners { path }
    }

    fn read(&self) -> BTreeMap<String, Winner> {
        std::fs::read(&self.path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Rewrites the whole file through a sibling and a rename, so concurrent `connect`
    /// processes never read half a file; the last writer wins (it is only a hint).
    fn write(&self, map: &BTreeMap<String, Winner>) {
        let tmp = self
            .path
            .with_extension(format!("tmp.{}", std::process::id()));
        let written = serde_json::to_vec_pretty(map)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, &self.path));
        if let Err(e) = written {
            tracing::debug!(file = %self.path.display(), "cannot store the last working key: {e}");
            let _ = std::fs::remove_file(&tmp);
        }
    }

    /// The key that last worked, with what made it the winner.
    pub fn get(&self, pin_id: &str, user: &str) -> Option<Winner> {
        self.read().remove(&slot(pin_id, user))
    }

    pub fn remember(&self, pin_id: &str, user: &str, winner: &Winner) {
        let mut map = self.read();
        if map.get(&slot(pin_id, user)) != Some(winner) {
            map.insert(slot(pin_id, user), winner.clone());
            self.write(&map);
        }
    }

    pub fn forget(&self, pin_id: &str, user: &str) {
        let mut map = self.read();
        if map.remove(&slot(pin_id, user)).is_some() {
            self.write(&map);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::CandidateSource;
    use russh::keys::{Algorithm, HashAlg, PrivateKey};

    fn winner(comment: &str) -> Winner {
        let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap();
        Winner {
            candidate: Candidate {
                fingerprint: key.public_key().fingerprint(HashAlg::Sha256).to_string(),
                public_key: key.public_key().clone(),
                source: CandidateSource::Lineage,
                can_sign: true,
                key_pair: Some((comment.into(), "111111111111".into())),
                key_file: None,
            },
            lineage: None,
        }
    }

    #[test]
    fn remembers_per_host_and_user_and_forgets() {
        let dir = tempfile::tempdir().unwrap();
        let winners = Winners::new(dir.path().join("winners.json"));
        assert_eq!(winners.get("i-0abc", "ec2-user"), None);
        let (old, other) = (winner("old-key"), winner("other"));
        winners.remember("i-0abc", "ec2-user", &old);
        winners.remember("i-0abc", "admin", &other);
        let again = Winners::new(dir.path().join("winners.json"));
        assert_eq!(again.get("i-0abc", "ec2-user"), Some(old));
        again.forget("i-0abc", "ec2-user");
        assert_eq!(winners.get("i-0abc", "ec2-user"), None);
        assert_eq!(winners.get("i-0abc", "admin"), Some(other));
    }
}
