//! Why the proxy could not reach a host or finish the handshake, in words the user reads on their
//! terminal (sent as the SSH disconnect message, which OpenSSH prints).

use std::fmt;

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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
