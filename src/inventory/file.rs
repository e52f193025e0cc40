//! The file inventory (`inventory = "file:PATH"`): instances, images, key pairs and snapshots
//! written by hand in TOML, for offline use, golden images outside AWS, tests and the demo.

use std::net::{IpAddr, Ipv6Addr};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use russh::keys::PublicKey;
use serde::Deserialize;

use super::host::{is_image_id, is_instance_id};
use super::{
    HostQuery, Image, Instance, InstanceState, Inventory, InventoryError, InventoryFuture, KeyPair,
    KeyType, Scope, Snapshot, INSTANCE_STATES,
};

/// The whole inventory, held in memory: files are small and every lookup is a scan.
#[derive(Debug, Clone)]
pub struct FileInventory {
    /// Named in errors and in the diagnosis ("from inventory.toml").
    pub source: PathBuf,
    instances: Vec<Instance>,
    images: Vec<SharedImage>,
    key_pairs: Vec<KeyPair>,
    snapshots: Vec<(Scope, Snapshot)>,
}

/// An image and the accounts that may see it, so the file can play an unshared AMI.
#[derive(Debug, Clone)]
struct SharedImage {
    image: Image,
    shared_with: Vec<String>,
    public: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    instances: Vec<RawInstance>,
    #[serde(default)]
    images: Vec<RawImage>,
    #[serde(default)]
    key_pairs: Vec<RawKeyPair>,
    #[serde(default)]
    snapshots: Vec<RawSnapshot>,
}

/// Strings where the model has enums or addresses, so that a bad value is reported with
/// the entry it is in rather than as a bare serde error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInstance {
    id: String,
    state: Option<String>,
    account: String,
    region: String,
    key_name: Option<String>,
    image_id: Option<String>,
    private_ip: Option<String>,
    public_ip: Option<String>,
    ipv6: Option<String>,
    public_dns: Option<String>,
    private_dns: Option<String>,
    /// The `Name` tag.
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImage {
    id: String,
    owner_account: String,
    region: String,
    name: Option<String>,
    description: Option<String>,
    creation_date: Option<String>,
    platform_details: Option<String>,
    source_instance_id: Option<String>,
    source_image_id: Option<String>,
    source_image_region: Option<String>,
    root_snapshot_id: Option<String>,
    #[serde(default)]
    shared_with: Vec<String>,
    #[serde(default)]
    public: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeyPair {
    name: String,
    account: String,
    region: String,
    key_type: Option<String>,
    id: Option<String>,
    fingerprint: Option<String>,
    public_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSnapshot {
    id: String,
    account: String,
    region: String,
    description: Option<String>,
}

impl FileInventory {
    pub fn load(path: &Path) -> Result<FileInventory> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read inventory file {}", path.display()))?;
        FileInventory::parse(&text, path)
    }

    /// Parses `text`; errors start with `source` and name the table and entry at fault.
    pub fn parse(text: &str, source: &Path) -> Result<FileInventory> {
        let file = source.display();
        let raw: RawFile = toml::from_str(text).map_err(|e| anyhow!("{file}: {e}"))?;
        let entry_error = |table: &str, n: usize, id: &str, e: anyhow::Error| {
            anyhow!("{file}: [[{table}]] #{} ({id}): {e}", n + 1)
        };
        let mut inventory = FileInventory {
            source: source.to_path_buf(),
            instances: Vec::new(),
            images: Vec::new(),
            key_pairs: Vec::new(),
            snapshots: Vec::new(),
        };
        for (n, raw) in raw.instances.into_iter().enumerate() {
            let id = raw.id.clone();
            let instance = instance(raw).map_err(|e| entry_error("instances", n, &id, e))?;
            inventory.instances.push(instance);
        }
        for (n, raw) in raw.images.into_iter().enumerate() {
            let id = raw.id.clone();
            let image = image(raw).map_err(|e| entry_error("images", n, &id, e))?;
            inventory.images.push(image);
        }
        for (n, raw) in raw.key_pairs.into_iter().enumerate() {
            let name = raw.name.clone();
            let pair = key_pair(raw).map_err(|e| entry_error("key_pairs", n, &name, e))?;
            inventory.key_pairs.push(pair);
        }
        for (n, raw) in raw.snapshots.into_iter().enumerate() {
            let id = raw.id.clone();
            check_scope(&raw.account, &raw.region)
                .map_err(|e| entry_error("snapshots", n, &id, e))?;
            let snapshot = Snapshot {
                id: raw.id,
                description: raw.description,
            };
            inventory
                .snapshots
                .push((Scope::new(&raw.account, &raw.region), snapshot));
        }
        Ok(inventory)
    }

    /// Every account and region the file mentions: where a host lookup should search.
    pub fn scopes(&self) -> Vec<Scope> {
        let mut scopes: Vec<Scope> = Vec::new();
        let all = self
            .instances
            .iter()
            .map(|i| Scope::new(&i.account, &i.region))
            .chain(
                self.key_pairs
                    .iter()
                    .map(|k| Scope::new(&k.account, &k.region)),
            );
        for scope in all {
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        scopes
    }

    fn not_found(what: String, scope: &Scope) -> InventoryError {
        InventoryError::NotFound {
            what,
            scope: scope.clone(),
        }
    }
}

fn instance(raw: RawInstance) -> Result<Instance> {
    if !is_instance_id(&raw.id) {
        return Err(anyhow!("id must be \"i-\" and 8 or 17 hex digits"));
    }
    check_scope(&raw.account, &raw.region)?;
    let state = match raw.state.as_deref() {
        None => InstanceState::Running,
        Some(name) => InstanceState::known(name).ok_or_else(|| {
            anyhow!(
                "unknown state \"{name}\" (expected {})",
                INSTANCE_STATES.join(", ")
            )
        })?,
    };
    if let Some(image_id) = &raw.image_id {
        check_image_id("image_id", image_id)?;
    }
    Ok(Instance {
        id: raw.id,
        state,
        key_name: raw.key_name,
        image_id: raw.image_id,
        account: raw.account,
        region: raw.region,
        private_ip: address("private_ip", raw.private_ip)?,
        public_ip: address("public_ip", raw.public_ip)?,
        ipv6: raw
            .ipv6
            .map(|s| {
                s.parse::<Ipv6Addr>()
                    .map_err(|_| anyhow!("ipv6 \"{s}\" is not an IPv6 address"))
            })
            .transpose()?,
        public_dns: raw.public_dns,
        private_dns: raw.private_dns,
        name_tag: raw.name,
    })
}

fn image(raw: RawImage) -> Result<SharedImage> {
    check_image_id("id", &raw.id)?;
    check_scope(&raw.owner_account, &raw.region)?;
    if let Some(id) = &raw.source_image_id {
        check_image_id("source_image_id", id)?;
    }
    if let Some(id) = raw
        .source_instance_id
        .as_ref()
        .filter(|id| !is_instance_id(id))
    {
        return Err(anyhow!("source_instance_id \"{id}\" is not an instance id"));
    }
    for account in &raw.shared_with {
        check_account(account).context("in shared_with")?;
    }
    let image = Image {
        id: raw.id,
        owner_account: raw.owner_account,
        name: raw.name,
        description: raw.description,
        creation_date: raw.creation_date,
        platform_details: raw.platform_details,
        source_instance_id: raw.source_instance_id,
        source_image_id: raw.source_image_id,
        source_image_region: raw.source_image_region,
        root_snapshot_id: raw.root_snapshot_id,
        region: raw.region,
    };
    Ok(SharedImage {
        image,
        shared_with: raw.shared_with,
        public: raw.public,
    })
}

fn key_pair(raw: RawKeyPair) -> Result<KeyPair> {
    check_scope(&raw.account, &raw.region)?;
    let parsed = raw
        .public_key
        .as_deref()
        .map(|line| {
            PublicKey::from_openssh(line.trim())
                .map_err(|e| anyhow!("public_key is not an OpenSSH public key line: {e}"))
        })
        .transpose()?;
    let key_type = match (raw.key_type.as_deref(), &parsed) {
        (Some("rsa"), _) => KeyType::Rsa,
        (Some("ed25519"), _) => KeyType::Ed25519,
        (Some(other), _) => {
            return Err(anyhow!(
                "unknown key_type \"{other}\" (expected rsa, ed25519)"
            ));
        }
        (None, Some(key)) => match key.algorithm().as_str() {
            "ssh-ed25519" => KeyType::Ed25519,
            "ssh-rsa" => KeyType::Rsa,
            other => return Err(anyhow!("EC2 key pairs are rsa or ed25519, not {other}")),
        },
        (None, None) => return Err(anyhow!("needs key_type or public_key")),
    };
    Ok(KeyPair {
        name: raw.name,
        id: raw.id,
        key_type,
        fingerprint: raw.fingerprint,
        public_key: raw.public_key.map(|s| s.trim().to_string()),
        account: raw.account,
        region: raw.region,
    })
}

fn address(field: &str, value: Option<String>) -> Result<Option<IpAddr>> {
    value
        .map(|s| {
            s.parse::<IpAddr>()
                .map_err(|_| anyhow!("{field} \"{s}\" is not an IP address"))
        })
        .transpose()
}

fn check_image_id(field: &str, id: &str) -> Result<()> {
    if is_image_id(id) {
        Ok(())
    } else {
        Err(anyhow!(
            "{field} \"{id}\" must be \"ami-\" and 8 or 17 hex digits"
        ))
    }
}

fn check_account(account: &str) -> Result<()> {
    if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(anyhow!("account \"{account}\" must be 12 digits"))
    }
}

fn check_scope(account: &str, region: &str) -> Result<()> {
    check_account(account)?;
    if region.is_empty() {
        return Err(anyhow!("region must not be empty"));
    }
    Ok(())
}

/// Whether the instance is what the user's host name means, mirroring the EC2 filters
/// (`instance-id`, `*-ip-address`, `dns-name`, `tag:Name`) the API backend uses.
fn matches_query(instance: &Instance, query: &HostQuery) -> bool {
    match query {
        HostQuery::InstanceId(id) => instance.id == *id,
        HostQuery::Ipv4(ip) => {
            let ip = IpAddr::V4(*ip);
            instance.private_ip == Some(ip) || instance.public_ip == Some(ip)
        }
        HostQuery::Ipv6(ip) => instance.ipv6 == Some(*ip),
        HostQuery::PublicDns { name, ip, .. } => {
            instance.public_dns.as_deref() == Some(name.as_str())
                || instance.public_ip == Some(IpAddr::V4(*ip))
        }
        HostQuery::PrivateDns {
            name,
            ip,
            instance_id,
            ..
        } => {
            instance.private_dns.as_deref() == Some(name.as_str())
                || ip.is_some_and(|ip| instance.private_ip == Some(IpAddr::V4(ip)))
                || instance_id.as_deref() == Some(instance.id.as_str())
        }
        HostQuery::NameTag(name) => instance.name_tag.as_deref() == Some(name.as_str()),
    }
}

fn in_scope(account: &str, region: &str, scope: &Scope) -> bool {
    account == scope.account && region == scope.region
}

impl Inventory for FileInventory {
    fn find_instances<'a>(
        &'a self,
        scope: &'a Scope,
        query: &'a HostQuery,
    ) -> InventoryFuture<'a, Vec<Instance>> {
        let found = self
            .instances
            .iter()
            .filter(|i| in_scope(&i.account, &i.region, scope) && matches_query(i, query))
            .cloned()
            .collect();
        Box::pin(async move { Ok(found) })
    }

    fn instance<'a>(&'a self, scope: &'a Scope, id: &'a str) -> InventoryFuture<'a, Instance> {
        let found = self
            .instances
            .iter()
            .find(|i| in_scope(&i.account, &i.region, scope) && i.id == id)
            .cloned()
            .ok_or_else(|| Self::not_found(format!("instance {id}"), scope));
        Box::pin(async move { found })
    }

    fn image<'a>(&'a self, scope: &'a Scope, id: &'a str) -> InventoryFuture<'a, Image> {
        // Visible as EC2 would show it: to its owner, to accounts it is shared with, to all if public.
        let found = self
            .images
            .iter()
            .find(|s| {
                s.image.id == id
                    && s.image.region == scope.region
                    && (s.public
                        || s.image.owner_account == scope.account
                        || s.shared_with.contains(&scope.account))
            })
            .map(|s| s.image.clone())
            .ok_or_else(|| Self::not_found(format!("image {id}"), scope));
        Box::pin(async move { found })
    }

    fn snapshots<'a>(
        &'a self,
        scope: &'a Scope,
        ids: &'a [String],
    ) -> InventoryFuture<'a, Vec<Snapshot>> {
        let found = self
            .snapshots
            .iter()
            .filter(|(s, snapshot)| s == scope && ids.contains(&snapshot.id))
            .map(|(_, snapshot)| snapshot.clone())
            .collect();
        Box::pin(async move { Ok(found) })
    }

    fn key_pairs<'a>(&'a self, scope: &'a Scope) -> InventoryFuture<'a, Vec<KeyPair>> {
        let found = self
            .key_pairs
            .iter()
            .filter(|k| in_scope(&k.account, &k.region, scope))
            .cloned()
            .collect();
        Box::pin(async move { Ok(found) })
    }
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
