//! `host:port` values (`listen`, `dial`), with bracketed IPv6.

use std::str::FromStr;

/// A `host:port` pair; IPv6 hosts are stored without brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

/// Why a `host:port` string was refused; shown after the config key that held it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HostPortError {
    #[error("expected HOST:PORT, e.g. \"127.0.0.1:2201\"")]
    Shape,
    #[error("expected a port number 1-65535 after the last ':'")]
    Port,
    #[error("an IPv6 address needs brackets, e.g. \"[::1]:2201\"")]
    BareIpv6,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for HostPort {
    type Err = HostPortError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or(HostPortError::Shape)?;
            let port = after.strip_prefix(':').ok_or(HostPortError::Shape)?;
            (host, port)
        } else {
            let (host, port) = s.rsplit_once(':').ok_or(HostPortError::Shape)?;
            if host.contains(':') {
                return Err(HostPortError::BareIpv6);
            }
            (host, port)
        };
        if host.is_empty() || host.chars().any(char::is_whitespace) {
            return Err(HostPortError::Shape);
        }
        // Port 0 means "any port" to bind() and can never be dialled.
        let port = match port.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => return Err(HostPortError::Port),
        };
        Ok(HostPort {
            host: host.to_string(),
            port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(
            "example.com:22".parse::<HostPort>(),
            Ok(HostPort {
                host: "example.com".into(),
                port: 22
            })
        );
        assert_eq!("::1:22".parse::<HostPort>(), Err(HostPortError::BareIpv6));
        assert_eq!("h:0".parse::<HostPort>(), Err(HostPortError::Port));
        assert_eq!("h:70000".parse::<HostPort>(), Err(HostPortError::Port));
        assert_eq!(":22".parse::<HostPort>(), Err(HostPortError::Shape));
        assert_eq!("[::1]22".parse::<HostPort>(), Err(HostPortError::Shape));
    }
}
