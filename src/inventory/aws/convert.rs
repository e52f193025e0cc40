//! aws-sdk-ec2's types to the inventory's own.

use std::net::IpAddr;

use super::super::{Image, Instance, InstanceState, KeyPair, KeyType, Snapshot};

fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim).filter(|s| !s.is_empty()).map(String::from)
}

pub(super) fn convert_instance(
    i: &aws_sdk_ec2::types::Instance,
    owner: &str,
    region: &str,
) -> Instance {
    let ip = |s: Option<&str>| s.and_then(|s| s.parse::<IpAddr>().ok());
    let ipv6 = i
        .ipv6_address()
        .or_else(|| {
            i.network_interfaces()
                .iter()
                .flat_map(|n| n.ipv6_addresses())
                .find_map(|a| a.ipv6_address())
        })
        .and_then(|s| s.parse().ok());
    let state = i
        .state()
        .and_then(|s| s.name())
        .map(|n| InstanceState::from(n.as_str().to_string()))
        .unwrap_or(InstanceState::Unknown("unknown".into()));
    Instance {
        id: i.instance_id().unwrap_or_default().to_string(),
        state,
        key_name: non_empty(i.key_name()),
        image_id: non_empty(i.image_id()),
        account: owner.to_string(),
        region: region.to_string(),
        private_ip: ip(i.private_ip_address()),
        public_ip: ip(i.public_ip_address()),
        ipv6,
        public_dns: non_empty(i.public_dns_name()),
        private_dns: non_empty(i.private_dns_name()),
        name_tag: i
            .tags()
            .iter()
            .find(|t| t.key() == Some("Name"))
            .and_then(|t| non_empty(t.value())),
    }
}

pub(super) fn convert_image(i: &aws_sdk_ec2::types::Image, region: &str) -> Image {
    let mappings = i.block_device_mappings();
    let root = i.root_device_name();
    let root_snapshot = mappings
        .iter()
        .find(|m| root.is_some() && m.device_name() == root)
        .or_else(|| mappings.iter().find(|m| m.ebs().is_some()))
        .and_then(|m| m.ebs())
        .and_then(|e| non_empty(e.snapshot_id()));
    Image {
        id: i.image_id().unwrap_or_default().to_string(),
        owner_account: i.owner_id().unwrap_or_default().to_string(),
        name: non_empty(i.name()),
        description: non_empty(i.description()),
        creation_date: non_empty(i.creation_date()),
        platform_details: non_empty(i.platform_details()),
        source_instance_id: non_empty(i.source_instance_id()),
        source_image_id: non_empty(i.source_image_id()),
        source_image_region: non_empty(i.source_image_region()),
        root_snapshot_id: root_snapshot,
        region: region.to_string(),
    }
}

pub(super) fn convert_snapshot(s: &aws_sdk_ec2::types::Snapshot) -> Snapshot {
    Snapshot {
        id: s.snapshot_id().unwrap_or_default().to_string(),
        description: non_empty(s.description()),
    }
}

pub(super) fn convert_key_pair(
    k: &aws_sdk_ec2::types::KeyPairInfo,
    account: &str,
    region: &str,
) -> Option<KeyPair> {
    let key_type = match k.key_type() {
        Some(aws_sdk_ec2::types::KeyType::Ed25519) => KeyType::Ed25519,
        Some(aws_sdk_ec2::types::KeyType::Rsa) => KeyType::Rsa,
        // Older answers omit the type; the public key says it.
        _ if k.public_key().is_some_and(|p| p.starts_with("ssh-ed25519")) => KeyType::Ed25519,
        _ => KeyType::Rsa,
    };
    Some(KeyPair {
        name: non_empty(k.key_name())?,
        id: non_empty(k.key_pair_id()),
        key_type,
        fingerprint: non_empty(k.key_fingerprint()),
        public_key: non_empty(k.public_key()),
        account: account.to_string(),
        region: region.to_string(),
    })
}
