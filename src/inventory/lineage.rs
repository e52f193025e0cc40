//! Where an instance's AMI came from: copies followed back to the CreateImage source, that
//! source instance and its key pair, with how each hop was learned so the diagnosis can cite it.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::host::{is_image_id, is_instance_id};
use super::{Image, Instance, Inventory, InventoryError, KeyPair, Scope};

/// Copy chains longer than this are unheard of; the bound keeps a broken inventory from
/// costing unbounded API calls.
pub const MAX_HOPS: usize = 8;

/// How a fact in the lineage became known: the explanation quotes these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Evidence {
    /// `ImageId` of the instance.
    InstanceImageId { instance_id: String },
    /// A field `DescribeImages` returned for this image (SourceImageId, SourceInstanceId).
    DescribeImages { image_id: String, field: String },
    /// The description EC2 writes into the root snapshot of a CreateImage or CopyImage AMI.
    SnapshotDescription { snapshot_id: String, text: String },
    /// The `[Copied ami-... from REGION]` prefix CopyImage puts into the AMI description.
    CopyDescription { image_id: String, text: String },
    /// Not visible from the instance's account; found through this configured account.
    ConfiguredProfile { account: String },
}

/// One AMI on the way back from the instance to the original.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hop {
    pub image: Image,
    /// The account whose credentials described the image (not necessarily its owner).
    pub account: String,
    pub region: String,
    /// How the image id was learned, then (if so) which configured account made it visible.
    pub learned_from: Vec<Evidence>,
}

/// The instance an AMI was made from, known by id even when it cannot be described.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    pub instance_id: String,
    /// The AMI owner: CreateImage runs in the instance's own account and region.
    pub account: String,
    pub region: String,
    pub learned_from: Evidence,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lineage {
    /// From the instance's own AMI (first) back to the oldest one found.
    pub hops: Vec<Hop>,
    pub source: Option<SourceRef>,
    /// The source instance as described in the owner account, for its `KeyName`.
    pub source_instance: Option<Instance>,
    /// That key pair, with its public key: the key most likely baked into authorized_keys.
    pub source_key_pair: Option<KeyPair>,
    /// What could not be learned and why, one sentence each.
    pub gaps: Vec<String>,
}

/// Walks the lineage of `instance`'s AMI. `accounts` are the configured account ids; the
/// instance's own account is tried first. Never fails: what cannot be learned becomes a gap.
pub async fn walk<I: Inventory + ?Sized>(
    inventory: &I,
    instance: &Instance,
    accounts: &[String],
) -> Lineage {
    let mut lineage = Lineage::default();
    let Some(first) = instance.image_id.clone() else {
        lineage
            .gaps
            .push(format!("{} has no image id", instance.id));
        return lineage;
    };
    let mut order = vec![instance.account.clone()];
    order.extend(accounts.iter().filter(|a| **a != instance.account).cloned());

    let mut next = Some(Link {
        image_id: first,
        region: instance.region.clone(),
        evidence: Evidence::InstanceImageId {
            instance_id: instance.id.clone(),
        },
    });
    let mut seen = HashSet::new();
    while let Some(link) = next.take() {
        if lineage.hops.len() == MAX_HOPS {
            lineage.gaps.push(format!(
                "stopped after {MAX_HOPS} AMIs; {} and older were not looked up",
                link.image_id
            ));
            break;
        }
        if !seen.insert(link.image_id.clone()) {
            lineage.gaps.push(format!(
                "{} names itself as an ancestor; stopped there",
                link.image_id
            ));
            break;
        }
        let Some(hop) = find_image(inventory, &link, &order, &mut lineage.gaps).await else {
            break;
        };
        let (source_link, source_ref) = source_of(inventory, &hop, &order, &mut lineage.gaps).await;
        lineage.hops.push(hop);
        next = source_link;
        if source_ref.is_some() {
            lineage.source = source_ref;
            break;
        }
    }
    if let Some(source) = lineage.source.clone() {
        look_up_source(inventory, &source, &order, &mut lineage).await;
    }
    lineage
}

/// The next AMI to describe and why we think it is the next one.
struct Link {
    image_id: String,
    region: String,
    evidence: Evidence,
}

/// Describes the image from each account in turn: a shared AMI that was unshared or
/// deregistered may still be visible to its owner.
async fn find_image<I: Inventory + ?Sized>(
    inventory: &I,
    link: &Link,
    order: &[String],
    gaps: &mut Vec<String>,
) -> Option<Hop> {
    let mut failures = Vec::new();
    for account in order {
        let scope = Scope::new(account, &link.region);
        match inventory.image(&scope, &link.image_id).await {
            Ok(image) => {
                let mut learned_from = vec![link.evidence.clone()];
                if *account != order[0] {
                    learned_from.push(Evidence::ConfiguredProfile {
                        account: account.clone(),
                    });
                }
                return Some(Hop {
                    image,
                    account: account.clone(),
                    region: link.region.clone(),
                    learned_from,
                });
            }
            Err(InventoryError::NotFound { .. }) => failures.push(format!("not in {account}")),
            Err(e) => failures.push(e.to_string()),
        }
    }
    gaps.push(format!(
        "{} ({}) is not visible: {}",
        link.image_id,
        link.region,
        failures.join("; ")
    ));
    None
}

/// What `hop`'s image came from: a copied AMI points at its source image, a CreateImage AMI
/// at its source instance. Fields first; descriptions only when EC2 left the fields empty.
async fn source_of<I: Inventory + ?Sized>(
    inventory: &I,
    hop: &Hop,
    order: &[String],
    gaps: &mut Vec<String>,
) -> (Option<Link>, Option<SourceRef>) {
    let image = &hop.image;
    let source_ref = |instance_id: String, learned_from: Evidence| SourceRef {
        instance_id,
        account: image.owner_account.clone(),
        region: image.region.clone(),
        learned_from,
    };
    if let Some(id) = &image.source_image_id {
        let link = Link {
            image_id: id.clone(),
            region: image
                .source_image_region
                .clone()
                .unwrap_or_else(|| image.region.clone()),
            evidence: Evidence::DescribeImages {
                image_id: image.id.clone(),
                field: "SourceImageId".into(),
            },
        };
        return (Some(link), None);
    }
    if let Some(id) = &image.source_instance_id {
        let evidence = Evidence::DescribeImages {
            image_id: image.id.clone(),
            field: "SourceInstanceId".into(),
        };
        return (None, Some(source_ref(id.clone(), evidence)));
    }
    if let Some((source, region)) = image
        .description
        .as_deref()
        .and_then(parse_copy_description)
    {
        let link = Link {
            image_id: source,
            region,
            evidence: Evidence::CopyDescription {
                image_id: image.id.clone(),
                text: image.description.clone().unwrap_or_default(),
            },
        };
        return (Some(link), None);
    }
    let Some(snapshot_id) = image.root_snapshot_id.clone() else {
        gaps.push(format!(
            "{} names no source image, source instance or root snapshot",
            image.id
        ));
        return (None, None);
    };
    // The snapshot belongs to the AMI owner; a shared AMI's snapshot is usually visible only there.
    let mut accounts = vec![hop.account.clone()];
    if order.contains(&image.owner_account) && image.owner_account != hop.account {
        accounts.push(image.owner_account.clone());
    }
    let Some(text) =
        snapshot_description(inventory, &snapshot_id, &image.region, &accounts, gaps).await
    else {
        return (None, None);
    };
    let evidence = Evidence::SnapshotDescription {
        snapshot_id,
        text: text.clone(),
    };
    if let Some((instance_id, _)) = parse_create_image_snapshot(&text) {
        return (None, Some(source_ref(instance_id, evidence)));
    }
    if let Some((_, source)) = parse_copy_snapshot(&text) {
        // The text does not say the source region; a same-region copy is the common case.
        let link = Link {
            image_id: source,
            region: image.region.clone(),
            evidence,
        };
        return (Some(link), None);
    }
    gaps.push(format!(
        "{} names no source; its root snapshot says \"{text}\"",
        image.id
    ));
    (None, None)
}

async fn snapshot_description<I: Inventory + ?Sized>(
    inventory: &I,
    snapshot_id: &str,
    region: &str,
    accounts: &[String],
    gaps: &mut Vec<String>,
) -> Option<String> {
    let ids = [snapshot_id.to_string()];
    let mut failures = Vec::new();
    for account in accounts {
        match inventory
            .snapshots(&Scope::new(account, region), &ids)
            .await
        {
            Ok(found) => match found.into_iter().find(|s| s.id == snapshot_id) {
                Some(snapshot) => return snapshot.description,
                None => failures.push(format!("not in {account}")),
            },
            Err(e) => failures.push(e.to_string()),
        }
    }
    gaps.push(format!(
        "snapshot {snapshot_id} is not visible: {}",
        failures.join("; ")
    ));
    None
}

/// The source instance's `KeyName` and that key pair, looked up in the owner's account.
async fn look_up_source<I: Inventory + ?Sized>(
    inventory: &I,
    source: &SourceRef,
    order: &[String],
    lineage: &mut Lineage,
) {
    if !order.contains(&source.account) {
        lineage.gaps.push(format!(
            "{} is in account {}, which has no profile configured; add one to see its key pair",
            source.instance_id, source.account
        ));
        return;
    }
    let scope = Scope::new(&source.account, &source.region);
    let instance = match inventory.instance(&scope, &source.instance_id).await {
        Ok(instance) => instance,
        Err(e) => {
            lineage.gaps.push(format!(
                "source instance {}: {e} (terminated instances disappear after about an hour)",
                source.instance_id
            ));
            return;
        }
    };
    let key_name = instance.key_name.clone();
    lineage.source_instance = Some(instance);
    let Some(key_name) = key_name else {
        lineage.gaps.push(format!(
            "source instance {} was launched without a key pair",
            source.instance_id
        ));
        return;
    };
    match inventory.key_pairs(&scope).await {
        Ok(pairs) => match pairs.into_iter().find(|k| k.name == key_name) {
            Some(pair) => lineage.source_key_pair = Some(pair),
            None => lineage.gaps.push(format!(
                "key pair {key_name} of {} no longer exists in {scope}",
                source.instance_id
            )),
        },
        Err(e) => lineage.gaps.push(format!("key pairs of {scope}: {e}")),
    }
}

/// `[Copied ami-0123 from us-east-1] ...` -> (ami-0123, us-east-1). Nested copies stack these
/// prefixes, newest first, so the first one names the immediate source.
pub fn parse_copy_description(text: &str) -> Option<(String, String)> {
    let start = text.find("[Copied ")? + "[Copied ".len();
    let rest = &text[start..];
    let inner = &rest[..rest.find(']')?];
    let (image, region) = inner.split_once(" from ")?;
    let (image, region) = (image.trim(), region.trim());
    (is_image_id(image) && !region.is_empty() && !region.contains(' '))
        .then(|| (image.to_string(), region.to_string()))
}

/// `Created by CreateImage(i-0abc...) for ami-0123... [from vol-...]` -> (instance, image).
pub fn parse_create_image_snapshot(text: &str) -> Option<(String, String)> {
    let start = text.find("CreateImage(")? + "CreateImage(".len();
    let rest = &text[start..];
    let end = rest.find(')')?;
    let instance = &rest[..end];
    let image = rest[end + 1..].trim_start().strip_prefix("for ")?;
    let image = first_word(image);
    (is_instance_id(instance) && is_image_id(image))
        .then(|| (instance.to_string(), image.to_string()))
}

/// `Copied for DestinationAmi ami-new from SourceAmi ami-old for SourceSnapshot snap-...`
/// (what CopyImage writes into the new snapshot) -> (ami-new, ami-old).
pub fn parse_copy_snapshot(text: &str) -> Option<(String, String)> {
    let after = |marker: &str| -> Option<&str> {
        let at = text.find(marker)? + marker.len();
        Some(first_word(&text[at..]))
    };
    let destination = after("DestinationAmi ")?;
    let source = after("SourceAmi ")?;
    (is_image_id(destination) && is_image_id(source))
        .then(|| (destination.to_string(), source.to_string()))
}

fn first_word(s: &str) -> &str {
    s.split(|c: char| c.is_whitespace() || c == ',' || c == '.')
        .next()
        .unwrap_or("")
}

#[cfg(test)]
#[path = "lineage_tests.rs"]
mod tests;
