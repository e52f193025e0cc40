//! What the proxy knows about EC2: instances, images, key pairs and snapshots, and the
//! `Inventory` interface that the EC2 API backend and the file inventory both implement.

pub mod aws;
pub mod cache;
pub mod file;
pub mod host;
pub mod lineage;

use std::future::Future;
use std::net::{IpAddr, Ipv6Addr};
use std::pin::Pin;

use serde::{Deserialize, Serialize};

pub use host::HostQuery;

/// One EC2 instance as far as connecting and diagnosing need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub id: String,
    pub state: InstanceState,
    /// The launch key pair (`KeyName`): what the console says the instance accepts.
    pub key_name: Option<String>,
    /// Where the lineage walk starts; None for instances described without it.
    pub image_id: Option<String>,
    /// The account that owns the instance; its key pairs are the ones `key_name` refers to.
    pub account: String,
    pub region: String,
    pub private_ip: Option<IpAddr>,
    pub public_ip: Option<IpAddr>,
    pub ipv6: Option<Ipv6Addr>,
    pub public_dns: Option<String>,
    pub private_dns: Option<String>,
    /// The `Name` tag, which users type as a host name.
    pub name_tag: Option<String>,
}

/// `InstanceState.Name` from `DescribeInstances`; `Unknown` keeps a state EC2 may add later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum InstanceState {
    Pending,
    Running,
    Stopping,
    Stopped,
    ShuttingDown,
    Terminated,
    Unknown(String),
}

/// The state names EC2 uses, in the order an instance goes through them.
pub const INSTANCE_STATES: [&str; 6] = [
    "pending",
    "running",
    "stopping",
    "stopped",
    "shutting-down",
    "terminated",
];

impl InstanceState {
    /// EC2's own name for the state (`shutting-down`, ...).
    pub fn as_str(&self) -> &str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
            InstanceState::ShuttingDown => "shutting-down",
            InstanceState::Terminated => "terminated",
            InstanceState::Unknown(s) => s,
        }
    }

    /// The known state named `name` (EC2 spelling), or None; callers decide whether an
    /// unknown name is an error (a hand-written file) or `Unknown` (a new EC2 state).
    pub fn known(name: &str) -> Option<InstanceState> {
        Some(match name {
            "pending" => InstanceState::Pending,
            "running" => InstanceState::Running,
            "stopping" => InstanceState::Stopping,
            "stopped" => InstanceState::Stopped,
            "shutting-down" => InstanceState::ShuttingDown,
            "terminated" => InstanceState::Terminated,
            _ => return None,
        })
    }
}

impl From<String> for InstanceState {
    fn from(name: String) -> Self {
        InstanceState::known(&name).unwrap_or(InstanceState::Unknown(name))
    }
}

impl From<InstanceState> for String {
    fn from(state: InstanceState) -> Self {
        state.as_str().to_string()
    }
}

/// One AMI from `DescribeImages`, with the fields that say where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub id: String,
    /// The account that made (or copied) the AMI: where its source instance and key pair live.
    pub owner_account: String,
    pub name: Option<String>,
    /// Copies default to `[Copied ami-... from REGION] ...`, a fallback when SourceImageId is absent.
    pub description: Option<String>,
    pub creation_date: Option<String>,
    /// e.g. "Linux/UNIX", "Red Hat Enterprise Linux": hints the default login user.
    pub platform_details: Option<String>,
    /// Set by EC2 on AMIs made with CreateImage: the instance whose disk (and keys) it holds.
    pub source_instance_id: Option<String>,
    /// Set by EC2 on AMIs made with CopyImage.
    pub source_image_id: Option<String>,
    pub source_image_region: Option<String>,
    /// The root volume's snapshot, whose description names the source when the fields are absent.
    pub root_snapshot_id: Option<String>,
    pub region: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    Rsa,
    Ed25519,
}

/// One EC2 key pair from `DescribeKeyPairs` with `IncludePublicKey=true`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPair {
    pub name: String,
    /// `key-...`; absent for pairs described by hand in a file inventory.
    pub id: Option<String>,
    pub key_type: KeyType,
    /// As EC2 prints it; which form depends on how the pair was made (see keys::ec2_fingerprint).
    pub fingerprint: Option<String>,
    /// The OpenSSH public key line: lets the proxy probe an instance for this pair even
    /// without the private half.
    pub public_key: Option<String>,
    pub account: String,
    pub region: String,
}

/// An EBS snapshot, wanted only for the description EC2 writes into it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub id: String,
    pub description: Option<String>,
}

/// Where a call looks: EC2 objects are per account and per region.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Scope {
    /// The 12-digit account id; the EC2 backend maps it to the configured profile.
    pub account: String,
    pub region: String,
}

impl Scope {
    pub fn new(account: &str, region: &str) -> Scope {
        Scope {
            account: account.to_string(),
            region: region.to_string(),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "account {} ({})", self.account, self.region)
    }
}

/// Why a lookup failed, as one line the diagnosis can quote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    #[error("{what} not found in {scope}")]
    NotFound { what: String, scope: Scope },
    #[error("access denied to {action} in {scope}: {message}")]
    AccessDenied {
        action: String,
        scope: Scope,
        message: String,
    },
    #[error("EC2 API throttled the request in {scope}; try again shortly")]
    Throttled { scope: Scope },
    #[error("EC2 API at {endpoint} unreachable: {reason}")]
    Unreachable { endpoint: String, reason: String },
    #[error("no AWS credentials for account {account}; configure a profile for it")]
    NoCredentials { account: String },
    #[error("{0}")]
    Other(String),
}

/// The future every `Inventory` method returns. Boxed so that `dyn Inventory` works: the
/// backend (EC2 API or file) is chosen at run time from the config, and async fns in traits
/// are not object-safe.
pub type InventoryFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, InventoryError>> + Send + 'a>>;

/// The lookups the proxy makes; each one is a single cheap, precise call in the EC2 backend.
pub trait Inventory: Send + Sync {
    /// The instances `query` names in `scope`, by the most precise filter the form allows
    /// (instance id, address, DNS name, `tag:Name`); empty when none match.
    fn find_instances<'a>(
        &'a self,
        scope: &'a Scope,
        query: &'a HostQuery,
    ) -> InventoryFuture<'a, Vec<Instance>>;

    /// One instance by id; `NotFound` when `scope` does not hold it.
    fn instance<'a>(&'a self, scope: &'a Scope, id: &'a str) -> InventoryFuture<'a, Instance>;

    /// One AMI by id as seen from `scope` (own, shared with it, or public); `NotFound` when
    /// deregistered or not shared with that account.
    fn image<'a>(&'a self, scope: &'a Scope, id: &'a str) -> InventoryFuture<'a, Image>;

    /// The snapshots among `ids` visible in `scope`; absent ones are left out.
    fn snapshots<'a>(
        &'a self,
        scope: &'a Scope,
        ids: &'a [String],
    ) -> InventoryFuture<'a, Vec<Snapshot>>;

    /// Every key pair in `scope`, with public keys.
    fn key_pairs<'a>(&'a self, scope: &'a Scope) -> InventoryFuture<'a, Vec<KeyPair>>;
}

/// The `address` config key: which of an instance's addresses to dial.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddressPreference {
    /// The public IPv4, else the private one (an instance without a public address is
    /// usually reached over a VPN or peering, where the private address works).
    #[default]
    Public,
    /// Only the private IPv4: the user said the public path is not theirs to use.
    Private,
    /// Only the IPv6 address: the user has no IPv4 route to the instance.
    Ipv6,
}

/// The address to dial for `instance`, or None when it has none of the kind asked for.
pub fn dial_address(instance: &Instance, preference: AddressPreference) -> Option<IpAddr> {
    match preference {
        AddressPreference::Public => instance.public_ip.or(instance.private_ip),
        AddressPreference::Private => instance.private_ip,
        AddressPreference::Ipv6 => instance.ipv6.map(IpAddr::V6),
    }
}

/// Where to look for `query`, in order. A DNS name pins its region, so only that region is
/// searched, in each configured account, even when the region itself is not configured
/// (the user typed it); other forms search every configured scope.
pub fn search_scopes(query: &HostQuery, scopes: &[Scope]) -> Vec<Scope> {
    let Some(region) = query.region() else {
        return scopes.to_vec();
    };
    let mut out: Vec<Scope> = Vec::new();
    for scope in scopes {
        let pinned = Scope::new(&scope.account, region);
        if !out.contains(&pinned) {
            out.push(pinned);
        }
    }
    out
}

/// Ok when the instance can take a connection now; otherwise the reason to show instead
/// of dialling (a stopped instance would only time out, which says nothing).
pub fn reachable_state(instance: &Instance) -> Result<(), String> {
    let id = &instance.id;
    match &instance.state {
        InstanceState::Running => Ok(()),
        InstanceState::Pending => Err(format!(
            "{id} is pending (still starting); try again in a minute"
        )),
        InstanceState::Stopping | InstanceState::Stopped => Err(format!(
            "{id} is {}; start it with `aws ec2 start-instances --instance-ids {id} --region {}`",
            instance.state.as_str(),
            instance.region
        )),
        InstanceState::ShuttingDown | InstanceState::Terminated => Err(format!(
            "{id} is {}; it cannot be started again",
            instance.state.as_str()
        )),
        InstanceState::Unknown(state) => Err(format!("{id} is in state \"{state}\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn instance(id: &str, state: InstanceState) -> Instance {
        Instance {
            id: id.to_string(),
            state,
            key_name: None,
            image_id: None,
            account: "111111111111".into(),
            region: "us-east-1".into(),
            private_ip: Some("10.0.0.5".parse().unwrap()),
            public_ip: Some("54.1.2.3".parse().unwrap()),
            ipv6: None,
            public_dns: None,
            private_dns: None,
            name_tag: None,
        }
    }

    #[test]
    fn public_preference_falls_back_to_private_only() {
        let mut i = instance("i-0aaaaaaaaaaaaaaa1", InstanceState::Running);
        assert_eq!(
            dial_address(&i, AddressPreference::Public),
            Some("54.1.2.3".parse().unwrap())
        );
        i.public_ip = None;
        assert_eq!(
            dial_address(&i, AddressPreference::Public),
            Some("10.0.0.5".parse().unwrap())
        );
        assert_eq!(dial_address(&i, AddressPreference::Ipv6), None);
        i.ipv6 = Some("2600:1f18::5".parse().unwrap());
        assert_eq!(
            dial_address(&i, AddressPreference::Ipv6),
            Some("2600:1f18::5".parse().unwrap())
        );
        i.private_ip = None;
        assert_eq!(dial_address(&i, AddressPreference::Private), None);
    }

    #[test]
    fn only_running_instances_are_dialled() {
        let id = "i-0aaaaaaaaaaaaaaa1";
        assert_eq!(
            reachable_state(&instance(id, InstanceState::Running)),
            Ok(())
        );
        let stopped = reachable_state(&instance(id, InstanceState::Stopped)).unwrap_err();
        assert!(stopped.starts_with("i-0aaaaaaaaaaaaaaa1 is stopped; start it with `aws ec2 start-instances --instance-ids i-0aaaaaaaaaaaaaaa1"), "{stopped}");
        let gone = reachable_state(&instance(id, InstanceState::Terminated)).unwrap_err();
        assert_eq!(
            gone,
            "i-0aaaaaaaaaaaaaaa1 is terminated; it cannot be started again"
        );
        let odd = InstanceState::from("hibernating".to_string());
        assert_eq!(odd, InstanceState::Unknown("hibernating".into()));
        assert!(reachable_state(&instance(id, odd)).is_err());
        assert!(reachable_state(&instance(id, InstanceState::Pending)).is_err());
    }

    #[test]
    fn states_round_trip_through_ec2_names() {
        for name in INSTANCE_STATES {
            let state = InstanceState::known(name).unwrap();
            assert_eq!(String::from(state), name);
        }
        let json = serde_json::to_string(&InstanceState::ShuttingDown).unwrap();
        assert_eq!(json, "\"shutting-down\"");
    }

    #[test]
    fn dns_names_narrow_the_search_to_their_region() {
        let scopes = [
            Scope::new("111111111111", "us-east-1"),
            Scope::new("111111111111", "eu-west-1"),
            Scope::new("222222222222", "us-east-1"),
        ];
        let dns = host::classify("ip-10-0-0-5.eu-west-1.compute.internal");
        assert_eq!(
            search_scopes(&dns, &scopes),
            [
                Scope::new("111111111111", "eu-west-1"),
                Scope::new("222222222222", "eu-west-1")
            ]
        );
        let id = host::classify("i-0123456789abcdef0");
        assert_eq!(search_scopes(&id, &scopes), scopes);
    }

    #[test]
    fn errors_read_as_one_line_reasons() {
        let scope = Scope::new("222222222222", "us-east-1");
        let e = InventoryError::NotFound {
            what: "image ami-0123".into(),
            scope,
        };
        assert_eq!(
            e.to_string(),
            "image ami-0123 not found in account 222222222222 (us-east-1)"
        );
    }
}
