//! The public keys allowed to use the jump host, read from authorized_keys and .pub files.
//! A bad line or file is recorded and skipped so one typo does not lock the user out.

use std::path::{Path, PathBuf};

use russh::keys::PublicKey;

use crate::config::expand_tilde;

/// Certificates carry this suffix in their algorithm name (OpenSSH PROTOCOL.certkeys).
const CERT_SUFFIX: &str = "-cert-v01@openssh.com";

/// The keys a client may authenticate to the jump host with.
pub struct ClientKeys {
    /// Distinct key material; comments are irrelevant to authentication.
    keys: Vec<PublicKey>,
    /// What could not be used and why (path, "line N: reason"), for `serve` to print at start.
    pub skipped: Vec<(PathBuf, String)>,
}

impl ClientKeys {
    /// Expand each pattern (tilde, then glob) and read every matching file as authorized_keys
    /// format. A pattern matching nothing is not an error (a fresh ~/.ssh has no
    /// authorized_keys); unreadable files and malformed lines go to `skipped`.
    pub fn load(patterns: &[String]) -> ClientKeys {
        let mut found = ClientKeys::from_keys(Vec::new());
        for pattern in patterns {
            let expanded = expand_tilde(pattern);
            let matches = match glob::glob(&expanded.to_string_lossy()) {
                Ok(matches) => matches,
                Err(e) => {
                    found.skipped.push((
                        expanded,
                        format!("not a valid pattern ({} at position {})", e.msg, e.pos),
                    ));
                    continue;
                }
            };
            for entry in matches {
                match entry {
                    Ok(path) if path.is_file() => found.read_file(&path),
                    Ok(_) => {}
                    Err(e) => found.skipped.push((
                        e.path().to_path_buf(),
                        format!("cannot read: {}", e.error()),
                    )),
                }
            }
        }
        found
    }

    pub fn from_keys(keys: Vec<PublicKey>) -> ClientKeys {
        let mut found = ClientKeys {
            keys: Vec::new(),
            skipped: Vec::new(),
        };
        for key in keys {
            found.add(key);
        }
        found
    }

    /// True when `key` has the same key material as an allowed key (comments are ignored).
    pub fn contains(&self, key: &PublicKey) -> bool {
        self.keys.iter().any(|k| k.key_data() == key.key_data())
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn add(&mut self, key: PublicKey) {
        if !self.contains(&key) {
            self.keys.push(key);
        }
    }

    fn read_file(&mut self, path: &Path) {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                self.skipped
                    .push((path.to_path_buf(), format!("cannot read: {e}")));
                return;
            }
        };
        for (index, line) in text.lines().enumerate() {
            match parse_line(line) {
                Ok(Some(key)) => self.add(key),
                Ok(None) => {}
                Err(reason) => self
                    .skipped
                    .push((path.to_path_buf(), format!("line {}: {reason}", index + 1))),
            }
        }
    }
}

/// One authorized_keys line (sshd(8) AUTHORIZED_KEYS FILE FORMAT): `[options] type base64 [comment]`.
/// Ok(None) for blank and comment lines.
fn parse_line(line: &str) -> Result<Option<PublicKey>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    if line.starts_with("@cert-authority") || line.starts_with("@revoked") {
        return Err("known_hosts markers (@cert-authority, @revoked) are not client keys".into());
    }
    let key_part = if looks_like_key_type(first_word(line)) {
        line
    } else {
        let (options, rest) = split_options(line);
        // A CA key authorizes certificates signed by it, never itself; the proxy does not
        // verify user certificates, so such a line cannot grant anything here.
        if options
            .split(',')
            .any(|o| o.eq_ignore_ascii_case("cert-authority"))
        {
            return Err(
                "cert-authority keys are not accepted; list the user's own public key".into(),
            );
        }
        rest
    };
    let key_type = first_word(key_part);
    if key_type.ends_with(CERT_SUFFIX) {
        return Err(format!(
            "{key_type} is a certificate; list the plain public key instead"
        ));
    }
    if !looks_like_key_type(key_type) {
        return Err(format!(
            "expected a key type such as ssh-ed25519, found {key_type:?}"
        ));
    }
    PublicKey::from_openssh(key_part)
        .map(Some)
        .map_err(|e| format!("malformed {key_type} key: {e}"))
}

fn first_word(s: &str) -> &str {
    s.split_whitespace().next().unwrap_or("")
}

/// Key type names as listed in sshd(8): ssh-*, ecdsa-sha2-*, and the security-key sk-* kinds.
fn looks_like_key_type(word: &str) -> bool {
    word.starts_with("ssh-") || word.starts_with("ecdsa-sha2-") || word.starts_with("sk-")
}

/// Split `options rest` where options may contain quoted strings with spaces and `\"`,
/// e.g. `from="10.0.0.1",command="echo hi" ssh-ed25519 AAAA...`. The options themselves are
/// ignored: the proxy only decides who may connect, it does not enforce sshd's restrictions.
fn split_options(line: &str) -> (&str, &str) {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return (&line[..i], line[i..].trim_start()),
            _ => {}
        }
    }
    (line, "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A fresh key pair from ssh-keygen; returns the .pub line.
    fn keygen(dir: &Path, name: &str, kind: &str) -> String {
        let path = dir.join(name);
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", "", "-C", name, "-f"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::read_to_string(path.with_extension("pub"))
            .unwrap()
            .trim()
            .to_string()
    }

    fn key(line: &str) -> PublicKey {
        PublicKey::from_openssh(line).unwrap()
    }

    #[test]
    fn loads_authorized_keys_with_options_comments_and_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let ed = keygen(dir.path(), "ed", "ed25519");
        let ec = keygen(dir.path(), "ec", "ecdsa");
        let rsa = keygen(dir.path(), "rsa", "rsa");
        let authorized = format!(
            "# my keys\n\n{ed}\nfrom=\"10.0.0.1,10.0.0.2\",command=\"echo \\\"a b\\\"\",no-pty {ec}\nssh-ed25519 AAAAnotbase64!!\ncert-authority {rsa}\n@revoked {rsa}\n"
        );
        let file = dir.path().join("authorized_keys");
        std::fs::write(&file, authorized).unwrap();

        let keys = ClientKeys::load(&[file.display().to_string()]);
        assert_eq!(keys.len(), 2);
        assert!(keys.contains(&key(&ed)));
        assert!(keys.contains(&key(&ec)));
        assert!(!keys.contains(&key(&rsa)));
        let reasons: Vec<String> = keys.skipped.iter().map(|(_, r)| r.clone()).collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(
            reasons[0].starts_with("line 5: malformed ssh-ed25519 key"),
            "{reasons:?}"
        );
        assert!(reasons[1].starts_with("line 6: cert-authority keys are not accepted"));
        assert!(reasons[2].starts_with("line 7: known_hosts markers"));
        assert!(keys.skipped.iter().all(|(p, _)| p == &file));
    }

    #[test]
    fn glob_matches_pub_files_and_missing_files_are_fine() {
        let dir = tempfile::tempdir().unwrap();
        let a = keygen(dir.path(), "a", "ed25519");
        let b = keygen(dir.path(), "b", "ed25519");
        let patterns = vec![
            format!("{}/*.pub", dir.path().display()),
            format!("{}/authorized_keys", dir.path().display()),
            format!("{}/nothing/*.pub", dir.path().display()),
        ];
        let keys = ClientKeys::load(&patterns);
        assert_eq!(keys.len(), 2);
        assert!(keys.contains(&key(&a)) && keys.contains(&key(&b)));
        assert!(keys.skipped.is_empty(), "{:?}", keys.skipped);
    }

    #[test]
    fn contains_ignores_comments_and_duplicates_count_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = key(&keygen(dir.path(), "a", "ed25519"));
        let mut renamed = a.clone();
        renamed.set_comment("someone else");
        let keys = ClientKeys::from_keys(vec![a, renamed.clone()]);
        assert_eq!(keys.len(), 1);
        assert!(keys.contains(&renamed));
        assert!(!ClientKeys::from_keys(Vec::new()).contains(&renamed));
        assert!(ClientKeys::from_keys(Vec::new()).is_empty());
    }

    #[test]
    fn certificates_are_skipped_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        keygen(dir.path(), "ca", "ed25519");
        keygen(dir.path(), "user", "ed25519");
        let status = Command::new("ssh-keygen")
            .args(["-q", "-s"])
            .arg(dir.path().join("ca"))
            .args(["-I", "id", "-n", "me"])
            .arg(dir.path().join("user.pub"))
            .status()
            .unwrap();
        assert!(status.success());
        let cert = dir.path().join("user-cert.pub");
        let keys = ClientKeys::load(&[cert.display().to_string()]);
        assert!(keys.is_empty());
        assert_eq!(keys.skipped.len(), 1);
        assert!(
            keys.skipped[0]
                .1
                .starts_with("line 1: ssh-ed25519-cert-v01@openssh.com is a certificate"),
            "{:?}",
            keys.skipped
        );
    }

    #[test]
    fn unreadable_file_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("binary.pub");
        std::fs::write(&file, [0xff, 0xfe, 0x00]).unwrap();
        let keys = ClientKeys::load(&[file.display().to_string()]);
        assert!(keys.is_empty());
        assert_eq!(keys.skipped.len(), 1);
        assert!(keys.skipped[0].1.starts_with("cannot read:"));
    }

    #[test]
    fn option_splitting() {
        assert_eq!(
            split_options(r#"command="a \" b",no-pty ssh-rsa AAAA c"#),
            (r#"command="a \" b",no-pty"#, "ssh-rsa AAAA c")
        );
        assert_eq!(split_options("restrict"), ("restrict", ""));
    }
}
