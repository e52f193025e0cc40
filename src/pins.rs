//! Pinned upstream host keys: the key a host showed on first contact, kept per host (per
//! instance id when known, since EC2 recycles IP addresses), so a changed key is refused.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use russh::keys::{HashAlg, PublicKey};

/// What the pin file says about a key a host just presented.
#[derive(Debug, PartialEq, Eq)]
pub enum PinCheck {
    /// No pin for this host yet: trust on first use and record it.
    New,
    Match,
    /// The host presents another key than the pinned one (its SHA256 fingerprint).
    Changed {
        pinned: String,
    },
}

/// Decides from the pin file's text; the first line for an id wins, as in known_hosts.
pub fn check(text: &str, id: &str, key: &PublicKey) -> PinCheck {
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(line_id), Some(algo), Some(blob)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if line_id.starts_with('#') || !line_id.eq_ignore_ascii_case(id) {
            continue;
        }
        return match PublicKey::from_openssh(&format!("{algo} {blob}")) {
            Ok(pinned) if pinned.key_data() == key.key_data() => PinCheck::Match,
            Ok(pinned) => PinCheck::Changed {
                pinned: fingerprint(&pinned),
            },
            Err(_) => PinCheck::Changed {
                pinned: format!("an unreadable entry ({algo})"),
            },
        };
    }
    PinCheck::New
}

pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

pub struct Pins {
    path: PathBuf,
}

impl Pins {
    pub fn new(path: PathBuf) -> Pins {
        Pins { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn check(&self, id: &str, key: &PublicKey) -> Result<PinCheck> {
        match fs::read_to_string(&self.path) {
            Ok(text) => Ok(check(&text, id, key)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PinCheck::New),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", self.path.display())),
        }
    }

    /// Appends a pin with one write on an O_APPEND file, so concurrent `connect`
    /// processes never interleave partial lines.
    pub fn record(&self, id: &str, key: &PublicKey) -> Result<()> {
        let bare = PublicKey::new(key.key_data().clone(), "");
        let line = format!("{id} {}\n", bare.to_openssh()?.trim_end());
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)
            .with_context(|| format!("cannot open {}", self.path.display()))?;
        file.write_all(line.as_bytes())
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::{Algorithm, PrivateKey};

    fn key() -> PublicKey {
        PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
            .unwrap()
            .public_key()
            .clone()
    }

    #[test]
    fn first_contact_is_new_then_matches_then_a_change_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let pins = Pins::new(dir.path().join("pins"));
        let (k1, k2) = (key(), key());
        assert_eq!(pins.check("i-0abc", &k1).unwrap(), PinCheck::New);
        pins.record("i-0abc", &k1).unwrap();
        assert_eq!(pins.check("i-0abc", &k1).unwrap(), PinCheck::Match);
        assert_eq!(pins.check("I-0ABC", &k1).unwrap(), PinCheck::Match);
        assert_eq!(
            pins.check("i-0abc", &k2).unwrap(),
            PinCheck::Changed {
                pinned: fingerprint(&k1)
            }
        );
        assert_eq!(pins.check("web-1", &k2).unwrap(), PinCheck::New);
    }

    #[test]
    fn comments_and_garbage_lines_are_ignored() {
        let k = key();
        let text = format!(
            "# comment\n\ngarbage\nweb-1 {}\n",
            PublicKey::new(k.key_data().clone(), "")
                .to_openssh()
                .unwrap()
        );
        assert_eq!(check(&text, "web-1", &k), PinCheck::Match);
        assert_eq!(check(&text, "garbage", &k), PinCheck::New);
    }
}
