use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::inventory::file::FileInventory;
use crate::inventory::{HostQuery, InventoryFuture, Snapshot};

/// The file inventory, plus accounts whose every call is denied and a call counter: the
/// failures the EC2 backend can report, without AWS.
struct Double {
    inner: FileInventory,
    denied: Vec<String>,
    calls: AtomicUsize,
}

impl Double {
    fn new(toml: &str) -> Double {
        Double {
            inner: FileInventory::parse(toml, Path::new("t.toml")).expect("test inventory"),
            denied: Vec::new(),
            calls: AtomicUsize::new(0),
        }
    }

    fn gate(&self, scope: &Scope, action: &str) -> Result<(), InventoryError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.denied.contains(&scope.account) {
            return Err(InventoryError::AccessDenied {
                action: action.into(),
                scope: scope.clone(),
                message: "not authorized".into(),
            });
        }
        Ok(())
    }
}

impl Inventory for Double {
    fn find_instances<'a>(
        &'a self,
        scope: &'a Scope,
        query: &'a HostQuery,
    ) -> InventoryFuture<'a, Vec<Instance>> {
        match self.gate(scope, "ec2:DescribeInstances") {
            Ok(()) => self.inner.find_instances(scope, query),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }
    fn instance<'a>(&'a self, scope: &'a Scope, id: &'a str) -> InventoryFuture<'a, Instance> {
        match self.gate(scope, "ec2:DescribeInstances") {
            Ok(()) => self.inner.instance(scope, id),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }
    fn image<'a>(&'a self, scope: &'a Scope, id: &'a str) -> InventoryFuture<'a, Image> {
        match self.gate(scope, "ec2:DescribeImages") {
            Ok(()) => self.inner.image(scope, id),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }
    fn snapshots<'a>(
        &'a self,
        scope: &'a Scope,
        ids: &'a [String],
    ) -> InventoryFuture<'a, Vec<Snapshot>> {
        match self.gate(scope, "ec2:DescribeSnapshots") {
            Ok(()) => self.inner.snapshots(scope, ids),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }
    fn key_pairs<'a>(&'a self, scope: &'a Scope) -> InventoryFuture<'a, Vec<KeyPair>> {
        match self.gate(scope, "ec2:DescribeKeyPairs") {
            Ok(()) => self.inner.key_pairs(scope),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }
}

const A: &str = "111111111111";
const B: &str = "222222222222";

fn accounts() -> Vec<String> {
    vec![B.to_string(), A.to_string()]
}

/// The source instance in A with key pair old-key, and the instance in B launched from `ami`.
fn instances(ami: &str, region: &str) -> String {
    format!(
        r#"
[[instances]]
id = "i-0aaaaaaaaaaaaaaa1"
account = "{A}"
region = "us-east-1"
key_name = "old-key"

[[key_pairs]]
name = "old-key"
account = "{A}"
region = "us-east-1"
key_type = "ed25519"

[[instances]]
id = "i-0bbbbbbbbbbbbbbb2"
account = "{B}"
region = "{region}"
key_name = "new-key"
image_id = "{ami}"
"#
    )
}

fn image(id: &str, region: &str, extra: &str) -> String {
    format!(
        "\n[[images]]\nid = \"{id}\"\nowner_account = \"{A}\"\nregion = \"{region}\"\nshared_with = [\"{B}\"]\n{extra}\n"
    )
}

async fn walk_all(inv: &Double, accounts: &[String]) -> Lineage {
    let scope = Scope::new(B, "us-east-1");
    let mut instance = inv.inner.instance(&scope, "i-0bbbbbbbbbbbbbbb2").await;
    if instance.is_err() {
        instance = inv
            .inner
            .instance(&Scope::new(B, "us-west-2"), "i-0bbbbbbbbbbbbbbb2")
            .await;
    }
    walk(inv, &instance.expect("test instance"), accounts).await
}

fn hop_ids(lineage: &Lineage) -> Vec<&str> {
    lineage.hops.iter().map(|h| h.image.id.as_str()).collect()
}

#[tokio::test]
async fn copy_chain_across_regions_by_source_image_fields() {
    let toml = instances("ami-0c0000000000000c3", "us-west-2")
        + &image(
            "ami-0c0000000000000c3",
            "us-west-2",
            "source_image_id = \"ami-0b0000000000000b2\"\nsource_image_region = \"us-east-1\"",
        )
        + &image(
            "ami-0b0000000000000b2",
            "us-east-1",
            "source_image_id = \"ami-0a0000000000000a1\"",
        )
        + &image(
            "ami-0a0000000000000a1",
            "us-east-1",
            "source_instance_id = \"i-0aaaaaaaaaaaaaaa1\"",
        );
    let inv = Double::new(&toml);
    let lineage = walk_all(&inv, &accounts()).await;
    assert_eq!(lineage.gaps, Vec::<String>::new());
    assert_eq!(
        hop_ids(&lineage),
        [
            "ami-0c0000000000000c3",
            "ami-0b0000000000000b2",
            "ami-0a0000000000000a1"
        ]
    );
    assert_eq!(lineage.hops[1].region, "us-east-1");
    assert_eq!(
        lineage.hops[1].learned_from,
        [Evidence::DescribeImages {
            image_id: "ami-0c0000000000000c3".into(),
            field: "SourceImageId".into()
        }]
    );
    assert_eq!(lineage.source_key_pair.unwrap().name, "old-key");
    assert_eq!(
        lineage.source_instance.unwrap().key_name.as_deref(),
        Some("old-key")
    );
    // 3 images, 1 instance, 1 key pair listing: no searching.
    assert_eq!(inv.calls.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn descriptions_fill_in_when_ec2_leaves_the_fields_empty() {
    // A copy known only by its description; a CreateImage AMI known only by its snapshot (moto).
    let toml = instances("ami-0b0000000000000b2", "us-east-1")
        + &image(
            "ami-0b0000000000000b2",
            "us-east-1",
            "description = \"[Copied ami-0a0000000000000a1 from us-east-1] web\"",
        )
        + &image(
            "ami-0a0000000000000a1",
            "us-east-1",
            "root_snapshot_id = \"snap-01\"",
        )
        + &format!(
            "[[snapshots]]\nid = \"snap-01\"\naccount = \"{A}\"\nregion = \"us-east-1\"\n\
             description = \"Created by CreateImage(i-0aaaaaaaaaaaaaaa1) for ami-0a0000000000000a1 from vol-1\"\n"
        );
    let lineage = walk_all(&Double::new(&toml), &accounts()).await;
    assert_eq!(lineage.gaps, Vec::<String>::new());
    assert_eq!(
        hop_ids(&lineage),
        ["ami-0b0000000000000b2", "ami-0a0000000000000a1"]
    );
    assert!(matches!(
        lineage.hops[1].learned_from[0],
        Evidence::CopyDescription { .. }
    ));
    let source = lineage.source.unwrap();
    assert_eq!(
        source.learned_from,
        Evidence::SnapshotDescription {
            snapshot_id: "snap-01".into(),
            text:
                "Created by CreateImage(i-0aaaaaaaaaaaaaaa1) for ami-0a0000000000000a1 from vol-1"
                    .into()
        }
    );
    assert_eq!(lineage.source_key_pair.unwrap().name, "old-key");
}

#[tokio::test]
async fn unshared_image_is_found_through_the_owner_profile() {
    let toml = instances("ami-0a0000000000000a1", "us-east-1")
        + &image(
            "ami-0a0000000000000a1",
            "us-east-1",
            "source_instance_id = \"i-0aaaaaaaaaaaaaaa1\"",
        )
        .replace(&format!("shared_with = [\"{B}\"]"), "");
    let inv = Double::new(&toml);
    let lineage = walk_all(&inv, &accounts()).await;
    assert_eq!(
        lineage.hops[0].learned_from[1],
        Evidence::ConfiguredProfile { account: A.into() }
    );
    assert_eq!(lineage.hops[0].account, A);
    assert_eq!(lineage.source_key_pair.unwrap().name, "old-key");

    // With no profile for the owner it is a gap, and nothing else is guessed.
    let lineage = walk_all(&inv, &[B.to_string()]).await;
    assert!(lineage.hops.is_empty());
    assert_eq!(
        lineage.gaps,
        ["ami-0a0000000000000a1 (us-east-1) is not visible: not in 222222222222"]
    );
}

#[tokio::test]
async fn aws_errors_become_gaps_not_failures() {
    let toml = instances("ami-0a0000000000000a1", "us-east-1")
        + &image(
            "ami-0a0000000000000a1",
            "us-east-1",
            "source_instance_id = \"i-0aaaaaaaaaaaaaaa1\"",
        );
    let mut inv = Double::new(&toml);
    inv.denied = vec![A.to_string()];
    let lineage = walk_all(&inv, &accounts()).await;
    assert_eq!(lineage.hops.len(), 1);
    assert_eq!(lineage.source.unwrap().instance_id, "i-0aaaaaaaaaaaaaaa1");
    assert_eq!(
        lineage.gaps,
        [
            "source instance i-0aaaaaaaaaaaaaaa1: access denied to ec2:DescribeInstances in account \
          111111111111 (us-east-1): not authorized (terminated instances disappear after about an hour)"
        ]
    );
}

#[tokio::test]
async fn same_account_golden_image_and_a_deleted_key_pair() {
    let toml = format!(
        r#"
[[instances]]
id = "i-0aaaaaaaaaaaaaaa1"
account = "{A}"
region = "us-east-1"
key_name = "gone-key"

[[instances]]
id = "i-0ccccccccccccccc3"
account = "{A}"
region = "us-east-1"
image_id = "ami-0a0000000000000a1"
"#
    ) + &image(
        "ami-0a0000000000000a1",
        "us-east-1",
        "source_instance_id = \"i-0aaaaaaaaaaaaaaa1\"",
    );
    let inv = Double::new(&toml);
    let scope = Scope::new(A, "us-east-1");
    let instance = inv
        .inner
        .instance(&scope, "i-0ccccccccccccccc3")
        .await
        .unwrap();
    let lineage = walk(&inv, &instance, &[]).await;
    assert_eq!(lineage.hops[0].learned_from.len(), 1);
    assert_eq!(
        lineage.source_instance.unwrap().key_name.as_deref(),
        Some("gone-key")
    );
    assert_eq!(
        lineage.gaps,
        [
            "key pair gone-key of i-0aaaaaaaaaaaaaaa1 no longer exists in account 111111111111 (us-east-1)"
        ]
    );
}

#[tokio::test]
async fn cycles_and_long_chains_stop() {
    let cycle = instances("ami-0a0000000000000a1", "us-east-1")
        + &image(
            "ami-0a0000000000000a1",
            "us-east-1",
            "source_image_id = \"ami-0b0000000000000b2\"",
        )
        + &image(
            "ami-0b0000000000000b2",
            "us-east-1",
            "source_image_id = \"ami-0a0000000000000a1\"",
        );
    let lineage = walk_all(&Double::new(&cycle), &accounts()).await;
    assert_eq!(lineage.hops.len(), 2);
    assert_eq!(
        lineage.gaps,
        ["ami-0a0000000000000a1 names itself as an ancestor; stopped there"]
    );

    let mut long = instances("ami-00000000000000000", "us-east-1");
    for n in 0..12 {
        long += &image(
            &format!("ami-{n:017x}"),
            "us-east-1",
            &format!("source_image_id = \"ami-{:017x}\"", n + 1),
        );
    }
    let inv = Double::new(&long);
    let lineage = walk_all(&inv, &accounts()).await;
    assert_eq!(lineage.hops.len(), MAX_HOPS);
    assert_eq!(
        lineage.gaps,
        ["stopped after 8 AMIs; ami-00000000000000008 and older were not looked up"]
    );
    assert_eq!(inv.calls.load(Ordering::SeqCst), MAX_HOPS);
}

#[test]
fn copy_descriptions() {
    assert_eq!(
        parse_copy_description("[Copied ami-0123456789abcdef0 from us-east-1] web server"),
        Some(("ami-0123456789abcdef0".into(), "us-east-1".into()))
    );
    // Nested copies: the first prefix is the immediate source.
    assert_eq!(
        parse_copy_description(
            "[Copied ami-0b0000000000000b2 from eu-west-1] [Copied ami-0a0000000000000a1 from us-east-1] x"
        ),
        Some(("ami-0b0000000000000b2".into(), "eu-west-1".into()))
    );
    assert_eq!(
        parse_copy_description("Copied ami-0123 from us-east-1"),
        None
    );
    assert_eq!(
        parse_copy_description("[Copied my-image from us-east-1]"),
        None
    );
    assert_eq!(
        parse_copy_description("[Copied ami-0123456789abcdef0 from us-east-1"),
        None
    );
}

#[test]
fn snapshot_descriptions() {
    let create = "Created by CreateImage(i-0123456789abcdef0) for ami-0fedcba9876543210";
    let expected = Some(("i-0123456789abcdef0".into(), "ami-0fedcba9876543210".into()));
    assert_eq!(parse_create_image_snapshot(create), expected);
    let older = format!("{create} from vol-0aaaaaaaaaaaaaaaa");
    assert_eq!(parse_create_image_snapshot(&older), expected);
    assert_eq!(
        parse_create_image_snapshot("Created by CreateImage(i-x) for ami-y"),
        None
    );
    assert_eq!(parse_create_image_snapshot("nightly backup"), None);

    let copy =
        "Copied for DestinationAmi ami-0b0000000000000b2 from SourceAmi ami-0a0000000000000a1 \
                for SourceSnapshot snap-0123. Task created on 1,700,000,000,000.";
    assert_eq!(
        parse_copy_snapshot(copy),
        Some((
            "ami-0b0000000000000b2".into(),
            "ami-0a0000000000000a1".into()
        ))
    );
    assert_eq!(parse_copy_snapshot(create), None);
}
