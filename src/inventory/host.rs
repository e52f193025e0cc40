//! What kind of name the user typed for a host, decided from the text alone, so the
//! inventory can look it up with one precise EC2 filter instead of listing everything.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// The forms a user types for an EC2 host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostQuery {
    /// `i-` and 8 or 17 hex digits.
    InstanceId(String),
    /// A public or private address; only the lookup can tell which.
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    /// `ec2-54-1-2-3.compute-1.amazonaws.com` or `ec2-54-1-2-3.REGION.compute.amazonaws.com`:
    /// the name encodes the public address and (always, `compute-1` being us-east-1) the region.
    PublicDns {
        name: String,
        ip: Ipv4Addr,
        region: Option<String>,
    },
    /// `ip-10-0-0-5.ec2.internal`, `ip-10-0-0-5.REGION.compute.internal`, or the
    /// resource-name form `i-0123456789abcdef0.REGION.compute.internal`.
    PrivateDns {
        name: String,
        ip: Option<Ipv4Addr>,
        instance_id: Option<String>,
        region: Option<String>,
    },
    /// Anything else is taken as the instance's `Name` tag, kept as typed (tags are case-sensitive).
    NameTag(String),
}

impl HostQuery {
    /// The region the name itself pins down, so a lookup can skip the other regions.
    pub fn region(&self) -> Option<&str> {
        match self {
            HostQuery::PublicDns { region, .. } | HostQuery::PrivateDns { region, .. } => {
                region.as_deref()
            }
            _ => None,
        }
    }
}

/// us-east-1 names its DNS zones differently from every other region (`compute-1`,
/// `ec2.internal`); these are the EC2 user guide's "Amazon EC2 instance hostname types".
const US_EAST_1: &str = "us-east-1";

pub fn classify(host: &str) -> HostQuery {
    let typed = host.trim();
    let lower = typed.trim_end_matches('.').to_ascii_lowercase();
    if is_instance_id(&lower) {
        return HostQuery::InstanceId(lower);
    }
    if let Ok(ip) = lower.parse::<Ipv4Addr>() {
        return HostQuery::Ipv4(ip);
    }
    let unbracketed = lower
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(&lower);
    if let Ok(ip) = unbracketed.parse::<Ipv6Addr>() {
        return HostQuery::Ipv6(ip);
    }
    if let Some(query) = public_dns(&lower) {
        return query;
    }
    if let Some(query) = private_dns(&lower) {
        return query;
    }
    HostQuery::NameTag(typed.to_string())
}

fn public_dns(name: &str) -> Option<HostQuery> {
    let (label, zone) = name.split_once('.')?;
    let ip = dashed_ipv4(label.strip_prefix("ec2-")?)?;
    let region = if zone == "compute-1.amazonaws.com" {
        US_EAST_1.to_string()
    } else {
        let region = zone
            .strip_suffix(".compute.amazonaws.com")
            .or_else(|| zone.strip_suffix(".compute.amazonaws.com.cn"))?;
        is_region(region).then(|| region.to_string())?
    };
    Some(HostQuery::PublicDns {
        name: name.to_string(),
        ip,
        region: Some(region),
    })
}

fn private_dns(name: &str) -> Option<HostQuery> {
    let (label, zone) = name.split_once('.')?;
    let region = if zone == "ec2.internal" {
        US_EAST_1
    } else {
        let region = zone.strip_suffix(".compute.internal")?;
        if !is_region(region) {
            return None;
        }
        region
    };
    let (ip, instance_id) = if let Some(dashed) = label.strip_prefix("ip-") {
        (Some(dashed_ipv4(dashed)?), None)
    } else if is_instance_id(label) {
        (None, Some(label.to_string()))
    } else {
        return None;
    };
    Some(HostQuery::PrivateDns {
        name: name.to_string(),
        ip,
        instance_id,
        region: Some(region.to_string()),
    })
}

/// `54-1-2-3` -> 54.1.2.3, as EC2 spells addresses inside host names.
fn dashed_ipv4(dashed: &str) -> Option<Ipv4Addr> {
    dashed.replace('-', ".").parse().ok()
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `ap-southeast-5`: words then a number.
fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let Some((last, words)) = parts.split_last() else {
        return false;
    };
    words.len() >= 2
        && words
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        && !last.is_empty()
        && last.bytes().all(|b| b.is_ascii_digit())
}

/// EC2 resource ids: a prefix and 8 (before 2016) or 17 lowercase hex digits.
fn is_resource_id(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix).is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17)
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

pub fn is_instance_id(s: &str) -> bool {
    is_resource_id(s, "i-")
}

pub fn is_image_id(s: &str) -> bool {
    is_resource_id(s, "ami-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn private(name: &str, ip: Option<&str>, id: Option<&str>, region: &str) -> HostQuery {
        HostQuery::PrivateDns {
            name: name.into(),
            ip: ip.map(|s| s.parse().unwrap()),
            instance_id: id.map(String::from),
            region: Some(region.into()),
        }
    }

    #[test]
    fn instance_ids_old_and_new_length() {
        assert_eq!(
            classify("i-0123456789abcdef0"),
            HostQuery::InstanceId("i-0123456789abcdef0".into())
        );
        assert_eq!(
            classify("I-DEADBEEF"),
            HostQuery::InstanceId("i-deadbeef".into())
        );
        // Wrong length or not hex: a Name tag that happens to start with "i-".
        assert_eq!(classify("i-0123"), HostQuery::NameTag("i-0123".into()));
        assert_eq!(
            classify("i-web-server1"),
            HostQuery::NameTag("i-web-server1".into())
        );
    }

    #[test]
    fn addresses() {
        assert_eq!(
            classify("10.0.0.5"),
            HostQuery::Ipv4("10.0.0.5".parse().unwrap())
        );
        assert_eq!(
            classify("2600:1f18::5"),
            HostQuery::Ipv6("2600:1f18::5".parse().unwrap())
        );
        assert_eq!(
            classify("[2600:1f18::5]"),
            HostQuery::Ipv6("2600:1f18::5".parse().unwrap())
        );
        assert_eq!(classify("10.0.0"), HostQuery::NameTag("10.0.0".into()));
    }

    #[test]
    fn public_dns_names_carry_address_and_region() {
        assert_eq!(
            classify("ec2-54-1-2-3.compute-1.amazonaws.com"),
            HostQuery::PublicDns {
                name: "ec2-54-1-2-3.compute-1.amazonaws.com".into(),
                ip: "54.1.2.3".parse().unwrap(),
                region: Some("us-east-1".into()),
            }
        );
        assert_eq!(
            classify("EC2-3-120-4-5.eu-central-1.compute.amazonaws.com."),
            HostQuery::PublicDns {
                name: "ec2-3-120-4-5.eu-central-1.compute.amazonaws.com".into(),
                ip: "3.120.4.5".parse().unwrap(),
                region: Some("eu-central-1".into()),
            }
        );
        let china = classify("ec2-52-80-1-2.cn-north-1.compute.amazonaws.com.cn");
        assert_eq!(china.region(), Some("cn-north-1"));
        // Not an address in the label: not EC2's name, so a tag.
        assert!(matches!(
            classify("ec2-web.compute-1.amazonaws.com"),
            HostQuery::NameTag(_)
        ));
    }

    #[test]
    fn private_dns_names_in_every_form() {
        assert_eq!(
            classify("ip-10-0-0-5.ec2.internal"),
            private(
                "ip-10-0-0-5.ec2.internal",
                Some("10.0.0.5"),
                None,
                "us-east-1"
            )
        );
        assert_eq!(
            classify("ip-172-31-8-9.eu-west-1.compute.internal"),
            private(
                "ip-172-31-8-9.eu-west-1.compute.internal",
                Some("172.31.8.9"),
                None,
                "eu-west-1"
            )
        );
        assert_eq!(
            classify("i-0123456789abcdef0.us-west-2.compute.internal"),
            private(
                "i-0123456789abcdef0.us-west-2.compute.internal",
                None,
                Some("i-0123456789abcdef0"),
                "us-west-2"
            )
        );
        assert_eq!(
            classify("i-0123456789abcdef0.ec2.internal").region(),
            Some("us-east-1")
        );
        assert_eq!(
            classify("ip-10-0-0-5.us-gov-west-1.compute.internal").region(),
            Some("us-gov-west-1")
        );
    }

    #[test]
    fn everything_else_is_a_name_tag_as_typed() {
        assert_eq!(classify("Web-1"), HostQuery::NameTag("Web-1".into()));
        assert_eq!(
            classify("ip-10-0-0-5.example.com"),
            HostQuery::NameTag("ip-10-0-0-5.example.com".into())
        );
        assert_eq!(
            classify("ip-10-0-0-5.nowhere.compute.internal"),
            HostQuery::NameTag("ip-10-0-0-5.nowhere.compute.internal".into())
        );
        assert_eq!(classify("Web-1").region(), None);
    }
}
