//! The seed scenario as test data: account 111111111111 made AMI ami-0123 from i-0src
//! (launched with key pair old-key) and shared it; account 222222222222 launched i-0abc from
//! it with key pair new-key. The keyring holds both keys and one unrelated key.

use std::path::PathBuf;
use std::sync::Arc;

use russh::keys::{Algorithm, PrivateKey};

use crate::auth::plan::{attempt_plan, Candidate, PlanInput};
use crate::auth::verdict::{Evidence, Method, Outcome, ProbeResult};
use crate::inventory::lineage::{self, Hop, Lineage, SourceRef};
use crate::inventory::{Image, Instance, InstanceState, KeyPair, KeyType};
use crate::keyring::{KeyEntry, KeySource};
use crate::keys::links::{self, Link};

pub const ACCOUNT_A: &str = "111111111111";
pub const ACCOUNT_B: &str = "222222222222";
pub const REGION: &str = "us-east-1";

pub struct Seed {
    /// new-key.pem, old-key.pem, id_other, in that order.
    pub keys: Vec<KeyEntry>,
    /// new-key in B, old-key in A, spare in A (not in the keyring).
    pub pairs: Vec<KeyPair>,
    pub links: Vec<Link>,
    pub instance: Instance,
    pub lineage: Lineage,
}

pub fn key(path: &str) -> KeyEntry {
    let private = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap();
    KeyEntry {
        source: KeySource::File(PathBuf::from(path)),
        public: private.public_key().clone(),
        private: Some(Arc::new(private)),
        comment: String::new(),
    }
}

pub fn pair(name: &str, account: &str, public: &russh::keys::PublicKey) -> KeyPair {
    KeyPair {
        name: name.into(),
        id: None,
        key_type: KeyType::Ed25519,
        fingerprint: None,
        public_key: Some(public.to_openssh().unwrap()),
        account: account.into(),
        region: REGION.into(),
    }
}

pub fn instance(id: &str, account: &str, key_name: Option<&str>) -> Instance {
    Instance {
        id: id.into(),
        state: InstanceState::Running,
        key_name: key_name.map(str::to_string),
        image_id: Some("ami-0123".into()),
        account: account.into(),
        region: REGION.into(),
        private_ip: None,
        public_ip: Some("54.1.2.3".parse().unwrap()),
        ipv6: None,
        public_dns: None,
        private_dns: None,
        name_tag: None,
    }
}

pub fn seed() -> Seed {
    let keys = vec![
        key("/home/u/.ssh/new-key.pem"),
        key("/home/u/.ssh/old-key.pem"),
        key("/home/u/.ssh/id_other"),
    ];
    let spare = key("/nowhere/spare");
    let pairs = vec![
        pair("new-key", ACCOUNT_B, &keys[0].public),
        pair("old-key", ACCOUNT_A, &keys[1].public),
        pair("spare", ACCOUNT_A, &spare.public),
    ];
    let links = links::link(&keys, &pairs, &[]);
    let image = Image {
        id: "ami-0123".into(),
        owner_account: ACCOUNT_A.into(),
        name: Some("al2023-ami-web".into()),
        description: None,
        creation_date: None,
        platform_details: Some("Linux/UNIX".into()),
        source_instance_id: Some("i-0src".into()),
        source_image_id: None,
        source_image_region: None,
        root_snapshot_id: None,
        region: REGION.into(),
    };
    let lineage = Lineage {
        hops: vec![Hop {
            image,
            account: ACCOUNT_B.into(),
            region: REGION.into(),
            learned_from: vec![lineage::Evidence::InstanceImageId {
                instance_id: "i-0abc".into(),
            }],
        }],
        source: Some(SourceRef {
            instance_id: "i-0src".into(),
            account: ACCOUNT_A.into(),
            region: REGION.into(),
            learned_from: lineage::Evidence::DescribeImages {
                image_id: "ami-0123".into(),
                field: "SourceInstanceId".into(),
            },
        }),
        source_instance: Some(instance("i-0src", ACCOUNT_A, Some("old-key"))),
        source_key_pair: Some(pairs[1].clone()),
        gaps: Vec::new(),
    };
    Seed {
        instance: instance("i-0abc", ACCOUNT_B, Some("new-key")),
        keys,
        pairs,
        links,
        lineage,
    }
}

/// The seed's plan: [new-key (launch), old-key (lineage), id_other (keyring), spare (EC2 only)].
pub(crate) fn plan(s: &Seed) -> Vec<Candidate> {
    attempt_plan(&PlanInput {
        keys: &s.keys,
        links: &s.links,
        key_pairs: &s.pairs,
        instance: Some(&s.instance),
        lineage: Some(&s.lineage),
        ..PlanInput::default()
    })
}

pub(crate) fn probe(candidate: &Candidate, outcome: Outcome) -> ProbeResult {
    ProbeResult {
        candidate: candidate.clone(),
        method: Method::Query,
        outcome,
    }
}

/// Evidence for the seed instance where the plan's keys got `outcomes`, in plan order.
pub(crate) fn seed_evidence(s: &Seed, outcomes: &[Outcome]) -> Evidence {
    let plan = plan(s);
    Evidence {
        host: "web".into(),
        user: "ec2-user".into(),
        instance: Some(s.instance.clone()),
        lineage: Some(s.lineage.clone()),
        probes: plan
            .iter()
            .zip(outcomes)
            .map(|(c, o)| probe(c, o.clone()))
            .collect(),
        key_pairs_in_account: vec!["new-key".into()],
        ..Evidence::default()
    }
}
