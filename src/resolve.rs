//! Turning the host the user typed into a connection target: `[[hosts]]` entries first,
//! then the inventory (EC2 API or file), through the lookup cache. What cannot be resolved
//! is dialled as typed in `connect` mode and refused in jump mode.

use std::sync::Arc;

use anyhow::Result;

use crate::config::{Config, InventorySource};
use crate::inventory::aws::{AccountProfile, Ec2Inventory, Ec2Settings, DEFAULT_ACCOUNT};
use crate::inventory::cache::Cache;
use crate::inventory::file::FileInventory;
use crate::inventory::lineage::{self, Lineage};
use crate::inventory::{self, AddressPreference, HostQuery, Instance, Inventory, KeyPair, Scope};
use crate::target::{self, Refusal, Target};

pub struct Resolver {
    /// None when the config says `inventory = "none"`, or the EC2 API cannot be set up.
    inventory: Option<Arc<dyn Inventory>>,
    /// The EC2 backend itself, when that is the inventory: it learns the default
    /// credentials' account id, which key pairs from that scope are then filed under.
    ec2: Option<Arc<Ec2Inventory>>,
    /// Why there is no inventory although one was asked for (told with refusals).
    unavailable: Option<String>,
    /// Accounts and regions searched, in order.
    scopes: Vec<Scope>,
    address: AddressPreference,
    cache: Cache,
}

impl Resolver {
    pub async fn new(config: &Config, cache: Cache) -> Result<Resolver> {
        let mut unavailable = None;
        let mut ec2 = None;
        let (inventory, scopes): (Option<Arc<dyn Inventory>>, Vec<Scope>) = match &config.inventory
        {
            InventorySource::None => (None, Vec::new()),
            InventorySource::File(path) => {
                let file = FileInventory::load(path)?;
                let scopes = file.scopes();
                (Some(Arc::new(file)), scopes)
            }
            InventorySource::Aws => match Ec2Inventory::new(ec2_settings(config)).await {
                Ok(backend) => {
                    let backend = Arc::new(backend);
                    ec2 = Some(backend.clone());
                    (
                        Some(backend as Arc<dyn Inventory>),
                        ec2.as_ref().map(|e| e.scopes()).unwrap_or_default(),
                    )
                }
                Err(e) => {
                    // No region or profile: the proxy still serves [[hosts]] and dials
                    // names as typed; refusals say why EC2 was not asked.
                    // Debug, not warn: `inventory = "aws"` is the default, and a user
                    // without AWS set up would see this on every `connect`.
                    tracing::debug!("EC2 inventory unavailable: {e:#}");
                    unavailable = Some(format!("{e:#}"));
                    (None, Vec::new())
                }
            },
        };
        Ok(Resolver {
            ec2,
            inventory,
            unavailable,
            scopes,
            address: config.address,
            cache,
        })
    }

    /// Resolves `host:port` as the user typed it. `allow_unknown` is true in `connect`
    /// mode, where the proxy is the user's own ProxyCommand and dialling a host as typed
    /// opens nothing new.
    pub async fn resolve(
        &self,
        config: &Config,
        host: &str,
        port: u16,
        allow_unknown: bool,
    ) -> Result<Target, Refusal> {
        if let Some(entry) = config.host_entry(host) {
            let mut target = target::resolve(config, host, port, allow_unknown)?;
            // An entry that names its instance still dials its own address, but the
            // diagnosis gets the instance (launch key pair, AMI) when the inventory has it.
            if let (Some(id), Some(_)) = (&entry.instance, &self.inventory) {
                match self.lookup(id).await {
                    Ok(found) => target.ec2 = found,
                    Err(error) => target.lookup_error = Some(error),
                }
            }
            return Ok(target);
        }
        let mut lookup_error = None;
        if self.inventory.is_some() {
            match self.lookup(host).await {
                Ok(Some(instance)) => {
                    return target::from_instance(host, port, instance, self.address)
                }
                Ok(None) => {}
                Err(error) if !allow_unknown => {
                    return Err(Refusal::LookupFailed {
                        host: host.to_string(),
                        error,
                    })
                }
                Err(error) => {
                    // Info, not warn: in `connect` mode stderr is the user's terminal; the
                    // diagnosis records it (verdict aws-error or a note in the explanation).
                    tracing::info!(
                        "cannot look up {host} in the inventory ({error}); dialling it as typed"
                    );
                    lookup_error = Some(error);
                }
            }
        }
        match (
            target::resolve(config, host, port, allow_unknown),
            &self.unavailable,
        ) {
            (Err(Refusal::UnknownHost { .. }), Some(why)) => Err(Refusal::LookupFailed {
                host: host.to_string(),
                error: why.clone(),
            }),
            (Ok(target), _) => Ok(Target {
                lookup_error,
                ..target
            }),
            (result, _) => result,
        }
    }

    /// The accounts the inventory can look into, the default chain's first: where the AMI
    /// lineage may be followed.
    pub fn accounts(&self) -> Vec<String> {
        let mut accounts: Vec<String> = Vec::new();
        for scope in &self.scopes {
            if !accounts.contains(&scope.account) {
                accounts.push(scope.account.clone());
            }
        }
        accounts
    }

    /// Every key pair (with its public key) in every searched account and region, and a
    /// line per lookup that failed.
    pub async fn key_pairs(&self) -> (Vec<KeyPair>, Vec<String>) {
        let mut problems: Vec<String> = self.unavailable.iter().cloned().collect();
        let mut pairs = Vec::new();
        if let Some(inventory) = &self.inventory {
            for scope in &self.scopes {
                match inventory.key_pairs(scope).await {
                    Ok(found) => pairs.extend(found),
                    Err(e) => problems.push(e.to_string()),
                }
            }
        }
        // Pairs of the default credentials' account are filed under a placeholder until
        // its id is known; with the real id they match the instance's launch key pair.
        if let Some(ec2) = &self.ec2 {
            if let Some(id) = ec2.default_account().await {
                for pair in pairs.iter_mut().filter(|p| p.account == DEFAULT_ACCOUNT) {
                    pair.account = id.clone();
                }
            }
        }
        (pairs, problems)
    }

    /// What a diagnosis needs beyond the instance: the key pairs of every searched account
    /// (with public keys) and the AMI lineage, plus a line per lookup that failed. Only
    /// asked when the expected key was refused, so a working login costs no API call.
    pub async fn evidence(
        &self,
        instance: &Instance,
    ) -> (Vec<KeyPair>, Option<Lineage>, Vec<String>) {
        let (mut pairs, problems) = self.key_pairs().await;
        let accounts = self.accounts();
        // An instance in none of the named accounts was found through the default
        // credentials: the pairs filed under that placeholder are its account's.
        if !accounts.contains(&instance.account) {
            for pair in pairs.iter_mut().filter(|p| p.account == DEFAULT_ACCOUNT) {
                pair.account = instance.account.clone();
            }
        }
        let lineage = match &self.inventory {
            Some(inventory) => Some(lineage::walk(inventory.as_ref(), instance, &accounts).await),
            None => None,
        };
        (pairs, lineage, problems)
    }

    /// The instance `host` names, from the cache or the inventory.
    async fn lookup(&self, host: &str) -> Result<Option<Instance>, String> {
        if let Some(known) = self.cache.get(host) {
            tracing::debug!(
                host,
                api_calls = 0,
                "inventory lookup answered from the cache"
            );
            return Ok(known);
        }
        let Some(inventory) = &self.inventory else {
            return Ok(None);
        };
        let query = inventory::host::classify(host);
        let mut calls = 0;
        let mut errors = Vec::new();
        let mut found = None;
        for scope in inventory::search_scopes(&query, &self.scopes) {
            calls += 1;
            match inventory.find_instances(&scope, &query).await {
                Ok(instances) => {
                    if let Some(instance) = pick(instances, &query) {
                        found = Some(instance);
                        break;
                    }
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        tracing::debug!(host, api_calls = calls, found = ?found.as_ref().map(|i| &i.id), "inventory lookup");
        if found.is_none() && !errors.is_empty() {
            // Not cached: the next connection asks again.
            return Err(errors.join("; "));
        }
        self.cache.put(host, found.clone());
        Ok(found)
    }
}

fn ec2_settings(config: &Config) -> Ec2Settings {
    Ec2Settings {
        regions: config.regions.clone(),
        accounts: config
            .accounts
            .iter()
            .map(|a| AccountProfile {
                id: a.id.clone(),
                profile: a.profile.clone(),
                regions: a.regions.clone(),
            })
            .collect(),
        ..Ec2Settings::default()
    }
}

/// Several instances can carry the same Name tag: prefer a running one, as the user most
/// likely means the live one.
fn pick(instances: Vec<Instance>, query: &HostQuery) -> Option<Instance> {
    if instances.len() > 1 {
        tracing::info!(
            ?query,
            count = instances.len(),
            "several instances match; using a running one"
        );
    }
    let running = instances
        .iter()
        .position(|i| i.state == inventory::InstanceState::Running);
    let index = running.unwrap_or(0);
    instances.into_iter().nth(index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::time::Duration;

    fn config(inventory: &Path) -> Config {
        let text = format!(
            "inventory = \"file:{}\"\naddress = \"private\"\n[[hosts]]\nmatch = \"tunnel\"\ndial = \"127.0.0.1:2201\"\n\
             [[hosts]]\nmatch = \"via-vpn\"\ndial = \"127.0.0.1:2202\"\ninstance = \"i-0bbbbbbbbbbbbbbb2\"\n",
            inventory.display()
        );
        Config::parse(&text, Path::new("test.toml")).unwrap()
    }

    fn example() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/inventory.example.toml")
    }

    #[tokio::test]
    async fn hosts_resolve_through_the_file_inventory_by_id_and_name() {
        let config = config(&example());
        let resolver = Resolver::new(&config, Cache::in_memory(Duration::from_secs(60)))
            .await
            .unwrap();
        let by_id = resolver
            .resolve(&config, "i-0bbbbbbbbbbbbbbb2", 22, false)
            .await
            .unwrap();
        assert_eq!(by_id.pin_id, "i-0bbbbbbbbbbbbbbb2");
        assert_eq!(
            by_id.ec2.as_ref().and_then(|i| i.key_name.as_deref()),
            Some("new-key")
        );
        let tunnel = resolver
            .resolve(&config, "tunnel", 22, false)
            .await
            .unwrap();
        assert_eq!(tunnel.dial.to_string(), "127.0.0.1:2201");
        assert_eq!(tunnel.ec2, None);
        // A [[hosts]] entry naming its instance dials its own address, with the instance known.
        let vpn = resolver
            .resolve(&config, "via-vpn", 22, false)
            .await
            .unwrap();
        assert_eq!(vpn.dial.to_string(), "127.0.0.1:2202");
        assert_eq!(vpn.pin_id, "i-0bbbbbbbbbbbbbbb2");
        assert_eq!(
            vpn.ec2.map(|i| i.id),
            Some("i-0bbbbbbbbbbbbbbb2".to_string())
        );
        let unknown = resolver
            .resolve(&config, "nowhere", 22, false)
            .await
            .unwrap_err();
        assert!(matches!(unknown, Refusal::UnknownHost { .. }));
    }
}
