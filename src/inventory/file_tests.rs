use std::path::Path;

use super::*;
use crate::inventory::host::classify;
use crate::inventory::lineage;
use crate::inventory::{dial_address, reachable_state, AddressPreference};
use crate::keys::ec2_fingerprint::{ec2_fingerprints, matches};

const EXAMPLE: &str = include_str!("../../config/inventory.example.toml");

fn example() -> FileInventory {
    FileInventory::parse(EXAMPLE, Path::new("inventory.example.toml")).expect("example parses")
}

fn parse_err(text: &str) -> String {
    match FileInventory::parse(text, Path::new("inventory.toml")) {
        Ok(_) => panic!("accepted: {text}"),
        Err(e) => format!("{e:#}"),
    }
}

fn b() -> Scope {
    Scope::new("222222222222", "us-east-1")
}

#[tokio::test]
async fn example_resolves_every_way_a_user_names_the_new_instance() {
    let inv = example();
    for host in [
        "i-0bbbbbbbbbbbbbbb2",
        "54.1.2.3",
        "10.2.0.22",
        "ec2-54-1-2-3.compute-1.amazonaws.com",
        "ip-10-2-0-22.ec2.internal",
        "i-0bbbbbbbbbbbbbbb2.ec2.internal",
        "web",
    ] {
        let found = inv.find_instances(&b(), &classify(host)).await.unwrap();
        let ids: Vec<&str> = found.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["i-0bbbbbbbbbbbbbbb2"], "{host}");
        assert_eq!(
            dial_address(&found[0], AddressPreference::Public),
            Some("54.1.2.3".parse().unwrap())
        );
    }
    // Other accounts' instances are not found from B, and unknown hosts find nothing.
    let old = inv
        .find_instances(&b(), &classify("web-old"))
        .await
        .unwrap();
    assert!(old.is_empty());
    let a = Scope::new("111111111111", "us-east-1");
    let old = inv.instance(&a, "i-0aaaaaaaaaaaaaaa1").await.unwrap();
    assert_eq!(
        reachable_state(&old).unwrap_err(),
        "i-0aaaaaaaaaaaaaaa1 is stopped; start it with `aws ec2 start-instances --instance-ids i-0aaaaaaaaaaaaaaa1 --region us-east-1`"
    );
    assert_eq!(inv.scopes(), [a, b()]);
}

#[tokio::test]
async fn example_lineage_finds_old_key_through_the_owner_account() {
    let inv = example();
    let instance = inv.instance(&b(), "i-0bbbbbbbbbbbbbbb2").await.unwrap();
    let accounts = ["222222222222".to_string(), "111111111111".to_string()];
    let lineage = lineage::walk(&inv, &instance, &accounts).await;
    assert_eq!(lineage.gaps, Vec::<String>::new());
    assert_eq!(lineage.hops.len(), 1);
    assert_eq!(lineage.hops[0].image.owner_account, "111111111111");
    let source = lineage.source.as_ref().unwrap();
    assert_eq!(source.instance_id, "i-0aaaaaaaaaaaaaaa1");
    let pair = lineage.source_key_pair.unwrap();
    assert_eq!(
        (pair.name.as_str(), pair.account.as_str()),
        ("old-key", "111111111111")
    );

    // Without a profile for the owner, the source is still named and the gap says why.
    let lineage = lineage::walk(&inv, &instance, &accounts[..1]).await;
    assert_eq!(lineage.source.unwrap().instance_id, "i-0aaaaaaaaaaaaaaa1");
    assert!(lineage.source_key_pair.is_none());
    assert_eq!(
        lineage.gaps,
        [
            "i-0aaaaaaaaaaaaaaa1 is in account 111111111111, which has no profile configured; add one to see its key pair"
        ]
    );
}

#[tokio::test]
async fn example_key_pairs_carry_real_keys_with_ec2_fingerprints() {
    let inv = example();
    let mut pairs = inv.key_pairs(&b()).await.unwrap();
    pairs.extend(
        inv.key_pairs(&Scope::new("111111111111", "us-east-1"))
            .await
            .unwrap(),
    );
    assert_eq!(pairs.len(), 2);
    for pair in pairs {
        let line = pair.public_key.as_deref().unwrap();
        let public = PublicKey::from_openssh(line).unwrap();
        let ours = ec2_fingerprints(None, &public);
        assert!(
            matches(pair.fingerprint.as_deref().unwrap(), &ours),
            "{}",
            pair.name
        );
    }
}

#[tokio::test]
async fn unshared_images_are_invisible_to_other_accounts() {
    let text = EXAMPLE.replace("shared_with = [\"222222222222\"]", "");
    let inv = FileInventory::parse(&text, Path::new("inv.toml")).unwrap();
    let err = inv.image(&b(), "ami-0a1d0000000000001").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "image ami-0a1d0000000000001 not found in account 222222222222 (us-east-1)"
    );
}

const ONE: &str = r#"
[[instances]]
id = "i-0aaaaaaaaaaaaaaa1"
account = "111111111111"
region = "us-east-1"
"#;

#[test]
fn bad_entries_are_named_with_file_table_and_position() {
    let two = format!("{ONE}{}", ONE.replace("a1\"", "a2\"\nstate = \"runing\""));
    assert_eq!(
        parse_err(&two),
        "inventory.toml: [[instances]] #2 (i-0aaaaaaaaaaaaaaa2): unknown state \"runing\" \
         (expected pending, running, stopping, stopped, shutting-down, terminated)"
    );
    assert_eq!(
        parse_err(&ONE.replace("region", "private_ip = \"10.0.0.300\"\nregion")),
        "inventory.toml: [[instances]] #1 (i-0aaaaaaaaaaaaaaa1): private_ip \"10.0.0.300\" is not an IP address"
    );
    assert_eq!(
        parse_err(&ONE.replace("111111111111", "1111")),
        "inventory.toml: [[instances]] #1 (i-0aaaaaaaaaaaaaaa1): account \"1111\" must be 12 digits"
    );
    let key = r#"
[[key_pairs]]
name = "old-key"
account = "111111111111"
region = "us-east-1"
public_key = "ssh-ed25519 AAAA-not-base64 old-key"
"#;
    let e = parse_err(key);
    assert!(
        e.starts_with("inventory.toml: [[key_pairs]] #1 (old-key): public_key is not an OpenSSH public key line"),
        "{e}"
    );
    let e = parse_err(&key.replace(
        "public_key = \"ssh-ed25519 AAAA-not-base64 old-key\"",
        "key_type = \"dsa\"",
    ));
    assert_eq!(
        e,
        "inventory.toml: [[key_pairs]] #1 (old-key): unknown key_type \"dsa\" (expected rsa, ed25519)"
    );
}

#[test]
fn typos_and_syntax_errors_name_the_file() {
    let e = parse_err(&ONE.replace("region", "key_nmae = \"x\"\nregion"));
    assert!(e.starts_with("inventory.toml: "), "{e}");
    assert!(e.contains("key_nmae"), "{e}");
    let e = parse_err("[[instances]\n");
    assert!(e.starts_with("inventory.toml: "), "{e}");
    let e = format!(
        "{:#}",
        FileInventory::load(Path::new("/nonexistent/inv.toml")).unwrap_err()
    );
    assert!(
        e.starts_with("cannot read inventory file /nonexistent/inv.toml"),
        "{e}"
    );
}
