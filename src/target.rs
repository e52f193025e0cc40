//! Where a connection really goes: the host as the user typed it, the address the proxy
//! dials, and the id its host key is pinned under. Pure decisions over the config.

use crate::config::{Config, HostPort};
use crate::inventory::{self, AddressPreference, Instance};

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
    /// What the inventory knows of the instance, when it was resolved through it.
    pub ec2: Option<Instance>,
    /// Why the inventory could not be asked, when the host is dialled as typed anyway.
    pub lookup_error: Option<String>,
}

/// Why a destination is not served.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Jump mode relays only hosts the proxy knows; anything else would make it an open
    /// relay to arbitrary host:port pairs.
    UnknownHost { host: String, port: u16 },
    /// The instance exists but cannot take connections (stopped, terminated, ...).
    NotRunning { host: String, reason: String },
    /// The instance has no address of the kind the config asks for.
    NoAddress {
        host: String,
        instance: String,
        wanted: AddressPreference,
    },
    /// Jump mode could not look the host up, so it cannot tell whether it may relay to it.
    LookupFailed { host: String, error: String },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::UnknownHost { host, port } => write!(
                f,
                "ec2-ssh-proxy: {host}:{port} is not a known host; the proxy relays only EC2 instances it can find and hosts in its config ([[hosts]] entries)"
            ),
            Refusal::NotRunning { host, reason } => write!(f, "ec2-ssh-proxy: {host}: {reason}"),
            Refusal::NoAddress { host, instance, wanted } => write!(
                f,
                "ec2-ssh-proxy: {host} ({instance}) has no {} address; set `address` in the config, or add a [[hosts]] entry with `dial`",
                match wanted {
                    AddressPreference::Public => "public or private",
                    AddressPreference::Private => "private",
                    AddressPreference::Ipv6 => "IPv6",
                }
            ),
            Refusal::LookupFailed { host, error } => write!(
                f,
                "ec2-ssh-proxy: cannot look up {host} in EC2 ({error}), so the jump host will not relay to it; a [[hosts]] entry for it works without the EC2 API"
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
            ec2: None,
            lookup_error: None,
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
            ec2: None,
            lookup_error: None,
        });
    }
    Err(Refusal::UnknownHost {
        host: host.to_string(),
        port,
    })
}

/// The target for an instance the inventory found: refused unless it is running and has an
/// address of the preferred kind; the port is the one the user gave.
pub fn from_instance(
    host: &str,
    port: u16,
    instance: Instance,
    address: AddressPreference,
) -> Result<Target, Refusal> {
    if let Err(reason) = inventory::reachable_state(&instance) {
        return Err(Refusal::NotRunning {
            host: host.to_string(),
            reason,
        });
    }
    let Some(ip) = inventory::dial_address(&instance, address) else {
        return Err(Refusal::NoAddress {
            host: host.to_string(),
            instance: instance.id.clone(),
            wanted: address,
        });
    };
    Ok(Target {
        host: host.to_string(),
        dial: HostPort {
            host: ip.to_string(),
            port,
        },
        // Pinned per instance: EC2 hands the same IP and DNS name to other instances later.
        pin_id: instance.id.clone(),
        instance: Some(instance.id.clone()),
        ec2: Some(instance),
        lookup_error: None,
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

    fn instance(state: crate::inventory::InstanceState) -> Instance {
        Instance {
            id: "i-0bbbbbbbbbbbbbbb2".into(),
            state,
            key_name: Some("new-key".into()),
            image_id: Some("ami-0a1d0000000000001".into()),
            account: "222222222222".into(),
            region: "us-east-1".into(),
            private_ip: Some("10.0.0.5".parse().unwrap()),
            public_ip: Some("54.1.2.3".parse().unwrap()),
            ipv6: None,
            public_dns: None,
            private_dns: None,
            name_tag: Some("web-1".into()),
        }
    }

    #[test]
    fn a_running_instance_is_dialled_at_its_preferred_address_and_pinned_by_id() {
        use crate::inventory::InstanceState::Running;
        let t = from_instance("web-1", 2222, instance(Running), AddressPreference::Public).unwrap();
        assert_eq!(t.dial.to_string(), "54.1.2.3:2222");
        assert_eq!(t.pin_id, "i-0bbbbbbbbbbbbbbb2");
        let t = from_instance("web-1", 22, instance(Running), AddressPreference::Private).unwrap();
        assert_eq!(t.dial.to_string(), "10.0.0.5:22");
        let err =
            from_instance("web-1", 22, instance(Running), AddressPreference::Ipv6).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ec2-ssh-proxy: web-1 (i-0bbbbbbbbbbbbbbb2) has no IPv6 address; set `address` in the config, or add a [[hosts]] entry with `dial`"
        );
    }

    #[test]
    fn a_stopped_instance_is_refused_without_dialling() {
        use crate::inventory::InstanceState::Stopped;
        let err =
            from_instance("web-1", 22, instance(Stopped), AddressPreference::Public).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("ec2-ssh-proxy: web-1: i-0bbbbbbbbbbbbbbb2 is stopped"),
            "{text}"
        );
        assert!(
            text.contains("aws ec2 start-instances --instance-ids i-0bbbbbbbbbbbbbbb2"),
            "{text}"
        );
    }

    #[test]
    fn connect_mode_dials_unknown_hosts_as_typed() {
        let t = resolve(&config(), "Other.Example", 2022, true).unwrap();
        assert_eq!(t.dial.host, "Other.Example");
        assert_eq!(t.dial.port, 2022);
        assert_eq!(t.pin_id, "[other.example]:2022");
    }
}
