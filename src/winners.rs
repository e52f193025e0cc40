//! The key that last worked for each (host, login user), so the next connection tries it
//! first and probes nothing. Kept in the state directory; a key that stops working is
//! forgotten and the attempt plan runs again.

use std::collections::BTreeMap;
use std::path::PathBuf;

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

    fn read(&self) -> BTreeMap<String, String> {
        std::fs::read(&self.path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Rewrites the whole file through a sibling and a rename, so concurrent `connect`
    /// processes never read half a file; the last writer wins (it is only a hint).
    fn write(&self, map: &BTreeMap<String, String>) {
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

    /// The SHA256 fingerprint of the key that last worked.
    pub fn get(&self, pin_id: &str, user: &str) -> Option<String> {
        self.read().remove(&slot(pin_id, user))
    }

    pub fn remember(&self, pin_id: &str, user: &str, fingerprint: &str) {
        let mut map = self.read();
        if map.get(&slot(pin_id, user)).map(String::as_str) != Some(fingerprint) {
            map.insert(slot(pin_id, user), fingerprint.to_string());
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

    #[test]
    fn remembers_per_host_and_user_and_forgets() {
        let dir = tempfile::tempdir().unwrap();
        let winners = Winners::new(dir.path().join("winners.json"));
        assert_eq!(winners.get("i-0abc", "ec2-user"), None);
        winners.remember("i-0abc", "ec2-user", "SHA256:old");
        winners.remember("i-0abc", "admin", "SHA256:other");
        let again = Winners::new(dir.path().join("winners.json"));
        assert_eq!(
            again.get("i-0abc", "ec2-user").as_deref(),
            Some("SHA256:old")
        );
        again.forget("i-0abc", "ec2-user");
        assert_eq!(winners.get("i-0abc", "ec2-user"), None);
        assert_eq!(
            winners.get("i-0abc", "admin").as_deref(),
            Some("SHA256:other")
        );
    }
}
