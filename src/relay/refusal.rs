//! Why the proxy could not reach or log in to a host, in words the user reads on their
//! terminal (sent as the SSH disconnect message, which OpenSSH prints).

use std::fmt;

/// One upstream login attempt with a keyring key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub fingerprint: String,
    /// The key file, or "agent".
    pub label: String,
    /// A transport or signing error; None for a plain refusal.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamError {
    Connect {
        host: String,
        addr: String,
        error: String,
    },
    Timeout {
        host: String,
        addr: String,
        secs: u64,
    },
    Handshake {
        host: String,
        addr: String,
        error: String,
    },
    HostKeyChanged {
        host: String,
        pin_id: String,
        pinned: String,
        presented: String,
        file: String,
    },
    LoginRefused {
        host: String,
        user: String,
        attempts: Vec<Attempt>,
        keyring_size: usize,
    },
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamError::Connect { host, addr, error } => write!(
                f,
                "ec2-ssh-proxy: cannot connect to {host} at {addr}: {error}. Check that the host is up, that sshd listens on that port, and that the security group and network ACLs allow it."
            ),
            UpstreamError::Timeout { host, addr, secs } => write!(
                f,
                "ec2-ssh-proxy: connecting to {host} at {addr} timed out after {secs} s. The host may be down, or a security group or network ACL drops the traffic."
            ),
            UpstreamError::Handshake { host, addr, error } => write!(
                f,
                "ec2-ssh-proxy: the SSH handshake with {host} at {addr} failed: {error}."
            ),
            UpstreamError::HostKeyChanged { host, pin_id, pinned, presented, file } => write!(
                f,
                "ec2-ssh-proxy: the host key of {host} has changed: pinned {pinned}, now presented {presented}. Someone could be intercepting the connection. If the host was really rebuilt, delete the line for '{pin_id}' from {file} and connect again."
            ),
            UpstreamError::LoginRefused { host, user, attempts, keyring_size } => {
                write!(f, "ec2-ssh-proxy: Permission denied (publickey) at {host} for user '{user}': ")?;
                if attempts.is_empty() {
                    return write!(
                        f,
                        "the keyring holds no usable key ({keyring_size} keys); see `ec2-ssh-proxy keyring list`."
                    );
                }
                let tried: Vec<String> = attempts
                    .iter()
                    .map(|a| match &a.error {
                        None => format!("{} ({})", a.fingerprint, a.label),
                        Some(e) => format!("{} ({}: {e})", a.fingerprint, a.label),
                    })
                    .collect();
                write!(f, "the host refused {}: {}.", plural(attempts.len(), "key"), tried.join(", "))?;
                if attempts.len() < *keyring_size {
                    write!(
                        f,
                        " {} more not tried: sshd allows only a few attempts per connection.",
                        plural(keyring_size - attempts.len(), "key")
                    )?;
                }
                Ok(())
            }
        }
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_refusal_names_user_host_and_every_key_tried() {
        let e = UpstreamError::LoginRefused {
            host: "web-1".into(),
            user: "ec2-user".into(),
            attempts: vec![
                Attempt {
                    fingerprint: "SHA256:aaa".into(),
                    label: "/k/new.pem".into(),
                    error: None,
                },
                Attempt {
                    fingerprint: "SHA256:bbb".into(),
                    label: "agent".into(),
                    error: Some("agent refused".into()),
                },
            ],
            keyring_size: 3,
        };
        assert_eq!(
            e.to_string(),
            "ec2-ssh-proxy: Permission denied (publickey) at web-1 for user 'ec2-user': the host refused 2 keys: SHA256:aaa (/k/new.pem), SHA256:bbb (agent: agent refused). 1 key more not tried: sshd allows only a few attempts per connection."
        );
    }

    #[test]
    fn empty_keyring_says_where_to_look() {
        let e = UpstreamError::LoginRefused {
            host: "h".into(),
            user: "u".into(),
            attempts: vec![],
            keyring_size: 0,
        };
        assert!(e
            .to_string()
            .ends_with("no usable key (0 keys); see `ec2-ssh-proxy keyring list`."));
    }

    #[test]
    fn host_key_change_gives_both_fingerprints_and_the_file() {
        let e = UpstreamError::HostKeyChanged {
            host: "web-1".into(),
            pin_id: "i-0abc".into(),
            pinned: "SHA256:old".into(),
            presented: "SHA256:new".into(),
            file: "/s/pinned_host_keys".into(),
        };
        let text = e.to_string();
        for part in [
            "SHA256:old",
            "SHA256:new",
            "'i-0abc'",
            "/s/pinned_host_keys",
        ] {
            assert!(text.contains(part), "{text}");
        }
    }

    #[test]
    fn connect_failure_names_the_address_and_the_usual_causes() {
        let e = UpstreamError::Connect {
            host: "web-1".into(),
            addr: "127.0.0.1:1".into(),
            error: "Connection refused (os error 111)".into(),
        };
        let text = e.to_string();
        assert!(text.contains("cannot connect to web-1 at 127.0.0.1:1: Connection refused"));
        assert!(text.contains("security group"));
    }
}
