//! Remembered host lookups, so a repeat connection to a known instance makes no EC2 call:
//! in memory for `serve`, in a JSON file in the state directory for `connect` (a new
//! process per connection), each entry trusted for the configured TTL.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::inventory::Instance;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    /// None records "no such instance", so unknown names are not looked up again either.
    instance: Option<Instance>,
    /// Seconds since the epoch when it was looked up.
    at: u64,
}

pub struct Cache {
    ttl: Duration,
    /// Where `connect` keeps entries between processes; None for the daemon.
    file: Option<PathBuf>,
    memory: Mutex<HashMap<String, Entry>>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Cache {
    pub fn in_memory(ttl: Duration) -> Cache {
        Cache {
            ttl,
            file: None,
            memory: Mutex::new(HashMap::new()),
        }
    }

    /// A cache backed by `file`; an unreadable or corrupt file is treated as empty (it is
    /// only a cache) and replaced on the next store.
    pub fn on_disk(ttl: Duration, file: PathBuf) -> Cache {
        let entries = std::fs::read(&file)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Cache {
            ttl,
            file: Some(file),
            memory: Mutex::new(entries),
        }
    }

    /// Some(lookup result) while fresh; None when never looked up or expired.
    pub fn get(&self, host: &str) -> Option<Option<Instance>> {
        let memory = self.memory.lock().ok()?;
        let entry = memory.get(&host.to_ascii_lowercase())?;
        fresh(entry.at, now(), self.ttl).then(|| entry.instance.clone())
    }

    pub fn put(&self, host: &str, instance: Option<Instance>) {
        let Ok(mut memory) = self.memory.lock() else {
            return;
        };
        let at = now();
        memory.retain(|_, e| fresh(e.at, at, self.ttl));
        memory.insert(host.to_ascii_lowercase(), Entry { instance, at });
        if let Some(file) = &self.file {
            // Write a sibling and rename it over: concurrent `connect` processes each see a
            // whole file, and the last writer wins (entries are only hints).
            let tmp = file.with_extension(format!("tmp.{}", std::process::id()));
            let written = serde_json::to_vec(&*memory)
                .map_err(std::io::Error::other)
                .and_then(|bytes| std::fs::write(&tmp, bytes))
                .and_then(|()| std::fs::rename(&tmp, file));
            if let Err(e) = written {
                tracing::debug!(file = %file.display(), "cannot store the lookup cache: {e}");
                let _ = std::fs::remove_file(&tmp);
            }
        }
    }
}

fn fresh(at: u64, now: u64, ttl: Duration) -> bool {
    now.saturating_sub(at) < ttl.as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::InstanceState;

    fn instance(id: &str) -> Instance {
        Instance {
            id: id.into(),
            state: InstanceState::Running,
            key_name: Some("new-key".into()),
            image_id: None,
            account: "222222222222".into(),
            region: "us-east-1".into(),
            private_ip: Some("127.0.0.11".parse().unwrap()),
            public_ip: None,
            ipv6: None,
            public_dns: None,
            private_dns: None,
            name_tag: None,
        }
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        assert!(fresh(100, 100, Duration::from_secs(600)));
        assert!(fresh(100, 699, Duration::from_secs(600)));
        assert!(!fresh(100, 700, Duration::from_secs(600)));
        assert!(!fresh(100, 100, Duration::ZERO));
    }

    #[test]
    fn a_lookup_survives_the_process_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cache.json");
        let cache = Cache::on_disk(Duration::from_secs(600), file.clone());
        assert_eq!(cache.get("web-1"), None);
        cache.put("Web-1", Some(instance("i-0123456789abcdef0")));
        cache.put("nowhere", None);
        let again = Cache::on_disk(Duration::from_secs(600), file);
        assert_eq!(
            again.get("web-1"),
            Some(Some(instance("i-0123456789abcdef0")))
        );
        assert_eq!(again.get("nowhere"), Some(None));
    }

    #[test]
    fn a_corrupt_file_is_an_empty_cache() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cache.json");
        std::fs::write(&file, b"{not json").unwrap();
        let cache = Cache::on_disk(Duration::from_secs(600), file);
        assert_eq!(cache.get("web-1"), None);
        cache.put("web-1", None);
        assert_eq!(cache.get("web-1"), Some(None));
    }
}
