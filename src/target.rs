//! Where a connection really goes: the host as the user typed it, the address the proxy
//! dials, and the id its host key is pinned under. Pure decisions over the config.

use crate::config::{Config, HostPort};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The name the user typed: the principal of the host certificate we present.
    pub host: String,
    /// Where the proxy connects.
    pub dial: HostPort,
    /// The key its host key is pinned under: the instance id when known (EC2 recycles IP
    /// addresses and DNS names), otherwise the typed name, `[host]:port` off port 22.
    pub pin_id: String,
    pub instance: Option<String>,
}

/// Why a destination is not served.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Jump mode relays only hosts the proxy knows; anything else would make it an open
    /// relay to arbitrary host:port pairs.
    UnknownHost { host: String, port: u16 },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::UnknownHost { host, port } => write!(
                f,
                "ec2-ssh-proxy: {host}:{port} is not a known host; the proxy relays only hosts in its config ([[hosts]] entries)"
            ),
        }
    }
}

/// Resolves a destination. `allow_unknown` is true in `connect` mode, where the proxy runs
/// as the user's own ProxyCommand and dialling the host as typed opens nothing new.
pub fn resolve(
    config: &Config,
    host: &str,
    port: u16,
    allow_unknown: bool,
) -> Result<Target, Refusal> {
    if let Some(entry) = config.host_entry(host) {
        let pin_id = entry
            .instance
            .clone()
            .unwrap_or_else(|| pin_name(host, port));
        return Ok(Target {
            host: host.to_string(),
            dial: entry.dial.clone(),
            pin_id,
            instance: entry.instance.clone(),
        });
    }
    if allow_unknown {
        return Ok(Target {
            host: host.to_string(),
            dial: HostPort {
                host: host.to_string(),
                port,
            },
            pin_id: pin_name(host, port),
            instance: None,
        });
    }
    Err(Refusal::UnknownHost {
        host: host.to_string(),
        port,
    })
}

/// known_hosts' own convention for names with a port.
fn pin_name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let text = r#"
            [[hosts]]
            match = "web-*"
            dial = "127.0.0.1:2201"
            [[hosts]]
            match = "db"
            dial = "127.0.0.1:2202"
            instance = "i-0123456789abcdef0"
        "#;
        Config::parse(text, std::path::Path::new("test.toml")).unwrap()
    }

    #[test]
    fn a_hosts_entry_gives_the_dial_address_and_the_pin_id() {
        let t = resolve(&config(), "web-1", 22, false).unwrap();
        assert_eq!(t.dial.port, 2201);
        assert_eq!(t.pin_id, "web-1");
        let t = resolve(&config(), "db", 2222, false).unwrap();
        assert_eq!(t.pin_id, "i-0123456789abcdef0");
        assert_eq!(t.instance.as_deref(), Some("i-0123456789abcdef0"));
    }

    #[test]
    fn jump_mode_refuses_unknown_destinations() {
        let err = resolve(&config(), "127.0.0.1", 6379, false).unwrap_err();
        assert!(err
            .to_string()
            .contains("127.0.0.1:6379 is not a known host"));
    }

    #[test]
    fn connect_mode_dials_unknown_hosts_as_typed() {
        let t = resolve(&config(), "Other.Example", 2022, true).unwrap();
        assert_eq!(t.dial.host, "Other.Example");
        assert_eq!(t.dial.port, 2022);
        assert_eq!(t.pin_id, "[other.example]:2022");
    }
}
