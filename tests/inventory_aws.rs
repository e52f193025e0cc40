//! The EC2 API inventory against moto's server: host resolution in every form, AMI lineage
//! across accounts, copies and stopped instances, failures, and what each costs in calls.
//! The world is tests/fixtures/moto_scenario.py (see its docstring for the story).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::moto::{Moto, Scenario, NEW_ACCOUNT, NEW_PROFILE, OLD_ACCOUNT, OLD_PROFILE};
use ec2_ssh_proxy::inventory::aws::{AccountProfile, Ec2Inventory, Ec2Settings, DEFAULT_ACCOUNT};
use ec2_ssh_proxy::inventory::lineage::{self, Evidence, Lineage};
use ec2_ssh_proxy::inventory::{
    host, reachable_state, Instance, InstanceState, Inventory, InventoryError, KeyType, Scope,
};

/// Gates the tests that re-run this binary with a different environment (see
/// `empty_endpoint_variables_do_not_panic`): the process environment is never mutated here.
const CHILD: &str = "EC2_SSH_PROXY_AWS_CHILD";

struct World {
    moto: Moto,
    scenario: Scenario,
    dir: tempfile::TempDir,
    old_pub: String,
}

impl World {
    fn start() -> World {
        let dir = tempfile::tempdir().unwrap();
        let old_pub = common::keygen(&dir.path().join("old-key"), "old-key");
        let new_pub = rsa_keygen(&dir.path().join("new-key"));
        let moto = Moto::start();
        let scenario = moto.scenario(&old_pub, &new_pub);
        World {
            moto,
            scenario,
            dir,
            old_pub,
        }
    }

    /// The default chain is profile `new-account` (222…); `old-account` (111…) is configured
    /// when `with_old` says so.
    fn settings(&self, with_old: bool) -> Ec2Settings {
        let (config, credentials) = self
            .scenario
            .write_aws_files(self.dir.path(), &self.moto.endpoint);
        let accounts = if with_old {
            vec![AccountProfile {
                id: OLD_ACCOUNT.into(),
                profile: OLD_PROFILE.into(),
                regions: Vec::new(),
            }]
        } else {
            Vec::new()
        };
        Ec2Settings {
            regions: vec![self.scenario.region().to_string()],
            accounts,
            default_profile: Some(NEW_PROFILE.into()),
            endpoint_url: Some(self.moto.endpoint.clone()),
            config_file: Some(config),
            credentials_file: Some(credentials),
            ..Ec2Settings::default()
        }
    }

    async fn inventory(&self, with_old: bool) -> Ec2Inventory {
        Ec2Inventory::new(self.settings(with_old)).await.unwrap()
    }

    fn scope(&self, account: &str) -> Scope {
        Scope::new(account, self.scenario.region())
    }

    /// The scenario's instance `name`, looked up by id in `account`.
    async fn instance_named(
        &self,
        inventory: &Ec2Inventory,
        account: &str,
        name: &str,
    ) -> Instance {
        inventory
            .instance(&self.scope(account), &self.scenario.instance(name))
            .await
            .unwrap()
    }
}

/// The instance's AMI lineage, walked through every configured account.
async fn lineage_of(inventory: &Ec2Inventory, instance: &Instance) -> Lineage {
    lineage::walk(inventory, instance, &inventory.configured_accounts()).await
}

fn rsa_keygen(path: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .args([
            "-q", "-t", "rsa", "-b", "2048", "-N", "", "-C", "new-key", "-f",
        ])
        .arg(path)
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success(), "{out:?}");
    std::fs::read_to_string(common::pub_path(path))
        .unwrap()
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_host_form_finds_the_instance_with_one_or_two_calls() {
    let world = World::start();
    let inventory = world.inventory(true).await;
    let web = world.scenario.instance("web-1");
    let scope = world.scope(DEFAULT_ACCOUNT);
    assert_eq!(world.scenario.web("public_ip"), "127.0.1.11");
    assert_eq!(world.scenario.web("private_ip"), "127.0.0.11");

    // (what the user typed, EC2 calls it should cost)
    let forms = [
        (web.clone(), 1),
        (world.scenario.web("public_ip"), 1),
        // Public address first, then private: two calls.
        (world.scenario.web("private_ip"), 2),
        (world.scenario.web("public_dns"), 1),
        (world.scenario.web("private_dns"), 1),
        ("web-1".to_string(), 1),
    ];
    for (typed, cost) in forms {
        let query = host::classify(&typed);
        let before = inventory.api_calls();
        let found = inventory.find_instances(&scope, &query).await.unwrap();
        assert_eq!(
            inventory.api_calls() - before,
            cost,
            "calls to resolve {typed} ({query:?})"
        );
        assert_eq!(found.len(), 1, "{typed} ({query:?}) found {found:?}");
        let instance = &found[0];
        assert_eq!(instance.id, web, "{typed}");
        assert_eq!(instance.name_tag.as_deref(), Some("web-1"));
        assert_eq!(instance.key_name.as_deref(), Some("new-key"));
        assert_eq!(instance.image_id, Some(world.scenario.image("golden")));
        assert_eq!(instance.account, NEW_ACCOUNT, "OwnerId of the reservation");
        assert_eq!(instance.state, InstanceState::Running);
        assert_eq!(instance.public_ip, Some("127.0.1.11".parse().unwrap()));
        assert_eq!(instance.private_ip, Some("127.0.0.11".parse().unwrap()));
        assert_eq!(
            instance.public_dns.as_deref(),
            Some("ec2-127-0-1-11.compute-1.amazonaws.com")
        );
        assert_eq!(
            instance.private_dns.as_deref(),
            Some("ip-127-0-0-11.ec2.internal")
        );
        assert_eq!(reachable_state(instance), Ok(()));
    }
    // The default chain's account id was learned from the answers (no STS call).
    assert_eq!(
        inventory.default_account().await.as_deref(),
        Some(NEW_ACCOUNT)
    );
    assert_eq!(
        inventory.scopes(),
        [world.scope(NEW_ACCOUNT), world.scope(OLD_ACCOUNT)]
    );
    // Account 111's instances are found through its profile, not the default chain.
    let app = inventory
        .find_instances(&world.scope(OLD_ACCOUNT), &host::classify("app-1"))
        .await
        .unwrap();
    assert_eq!(app.len(), 1);
    assert_eq!(app[0].id, world.scenario.instance("app-1"));
    assert_eq!(app[0].account, OLD_ACCOUNT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_hosts_are_empty_answers_not_errors() {
    let world = World::start();
    let inventory = world.inventory(true).await;
    let scope = world.scope(DEFAULT_ACCOUNT);
    // Lookups that find nothing teach no OwnerId: the default account stays unnamed.
    for typed in [
        "no-such-host",
        "10.9.9.9",
        "i-0123456789abcdef0",
        "ec2-54-1-2-3.compute-1.amazonaws.com",
        "ip-10-9-9-9.ec2.internal",
    ] {
        let found = inventory
            .find_instances(&scope, &host::classify(typed))
            .await
            .unwrap_or_else(|e| panic!("{typed}: {e}"));
        assert!(found.is_empty(), "{typed}: {found:?}");
    }
    // Asked for by id, absence is NotFound with the id in the message.
    let missing = inventory
        .instance(&scope, "i-0123456789abcdef0")
        .await
        .unwrap_err();
    assert!(
        matches!(missing, InventoryError::NotFound { .. }),
        "{missing}"
    );
    let image = inventory
        .image(&world.scope(OLD_ACCOUNT), "ami-0123456789abcdef0")
        .await
        .unwrap_err();
    assert_eq!(
        image.to_string(),
        "image ami-0123456789abcdef0 not found in account 111111111111 (us-east-1)"
    );
    // An account with no profile: no call, a reason that says what to configure.
    let before = inventory.api_calls();
    let err = inventory
        .key_pairs(&world.scope("333333333333"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no AWS credentials for account 333333333333; configure a profile for it"
    );
    assert_eq!(inventory.api_calls(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_ami_lineage_goes_through_the_owner_profile_to_old_key() {
    let world = World::start();
    let inventory = world.inventory(true).await;
    let web = world
        .instance_named(&inventory, DEFAULT_ACCOUNT, "web-1")
        .await;
    assert_eq!(web.key_name.as_deref(), Some("new-key"));

    let before = inventory.api_calls();
    let lineage = lineage_of(&inventory, &web).await;
    // DescribeImages from 222 (not visible in moto), from 111; the source instance; key pairs.
    assert_eq!(inventory.api_calls() - before, 4, "{lineage:#?}");
    assert!(lineage.gaps.is_empty(), "{:?}", lineage.gaps);
    assert_eq!(lineage.hops.len(), 1);
    let hop = &lineage.hops[0];
    assert_eq!(hop.image.id, world.scenario.image("golden"));
    assert_eq!(hop.image.owner_account, OLD_ACCOUNT);
    assert_eq!(hop.image.name.as_deref(), Some("golden"));
    assert_eq!(hop.account, OLD_ACCOUNT);
    assert_eq!(
        hop.learned_from,
        [
            Evidence::InstanceImageId {
                instance_id: web.id.clone()
            },
            Evidence::ConfiguredProfile {
                account: OLD_ACCOUNT.into()
            }
        ]
    );
    let source = lineage.source.as_ref().unwrap();
    assert_eq!(source.instance_id, world.scenario.instance("builder"));
    assert_eq!(source.account, OLD_ACCOUNT);
    assert_eq!(
        source.learned_from,
        Evidence::DescribeImages {
            image_id: world.scenario.image("golden"),
            field: "SourceInstanceId".into()
        }
    );
    let builder = lineage.source_instance.as_ref().unwrap();
    assert_eq!(builder.key_name.as_deref(), Some("old-key"));
    let key = lineage.source_key_pair.as_ref().unwrap();
    assert_eq!(key.name, "old-key");
    assert_eq!(key.account, OLD_ACCOUNT);
    assert_eq!(key.key_type, KeyType::Ed25519);
    assert!(
        key.id.as_deref().unwrap_or("").starts_with("key-"),
        "{key:?}"
    );
    // Same key material (moto may drop the comment).
    let material = |line: &str| {
        line.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        material(key.public_key.as_deref().unwrap()),
        material(&world.old_pub)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_owner_profile_the_gap_says_what_to_configure() {
    let world = World::start();
    let inventory = world.inventory(false).await;
    let web = world
        .instance_named(&inventory, DEFAULT_ACCOUNT, "web-1")
        .await;
    let lineage = lineage_of(&inventory, &web).await;
    assert!(lineage.hops.is_empty());
    assert!(lineage.source_key_pair.is_none());
    let golden = world.scenario.image("golden");
    assert_eq!(
        lineage.gaps,
        [format!(
            "{golden} (us-east-1) is not visible: not in {NEW_ACCOUNT}"
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_account_golden_image() {
    let world = World::start();
    let inventory = world.inventory(true).await;
    let app = world.instance_named(&inventory, OLD_ACCOUNT, "app-1").await;
    assert_eq!(app.key_name.as_deref(), Some("deploy-key"));
    let lineage = lineage_of(&inventory, &app).await;
    assert!(lineage.gaps.is_empty(), "{:?}", lineage.gaps);
    assert_eq!(lineage.hops.len(), 1);
    assert_eq!(lineage.hops[0].image.id, world.scenario.image("golden"));
    // Visible from the instance's own account: no configured-profile hop.
    assert_eq!(lineage.hops[0].learned_from.len(), 1);
    assert_eq!(
        lineage.source_key_pair.as_ref().map(|k| k.name.as_str()),
        Some("old-key")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_chain_is_followed_back_through_copy_descriptions() {
    let world = World::start();
    let inventory = world.inventory(true).await;
    let copied = world
        .instance_named(&inventory, OLD_ACCOUNT, "copied-1")
        .await;
    let lineage = lineage_of(&inventory, &copied).await;
    assert!(lineage.gaps.is_empty(), "{:?}", lineage.gaps);
    let ids: Vec<&str> = lineage.hops.iter().map(|h| h.image.id.as_str()).collect();
    let (copy_2, copy_1, golden) = (
        world.scenario.image("copy-2"),
        world.scenario.image("copy-1"),
        world.scenario.image("golden"),
    );
    assert_eq!(ids, [copy_2.as_str(), copy_1.as_str(), golden.as_str()]);
    // moto sets no SourceImageId on copies: the description EC2 writes is the evidence.
    assert!(lineage.hops[0].image.source_image_id.is_none());
    match &lineage.hops[1].learned_from[0] {
        Evidence::CopyDescription { image_id, text } => {
            assert_eq!(*image_id, copy_2);
            assert!(
                text.starts_with(&format!("[Copied {copy_1} from us-east-1]")),
                "{text}"
            );
        }
        other => panic!("copy-1 learned from {other:?}"),
    }
    assert_eq!(
        lineage.source.as_ref().map(|s| s.instance_id.clone()),
        Some(world.scenario.instance("builder"))
    );
    assert_eq!(
        lineage.source_key_pair.as_ref().map(|k| k.name.as_str()),
        Some("old-key")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_image_root_snapshot_names_its_source() {
    let world = World::start();
    let inventory = world.inventory(true).await;
    let golden = inventory
        .image(&world.scope(OLD_ACCOUNT), &world.scenario.image("golden"))
        .await
        .unwrap();
    let snapshot = golden.root_snapshot_id.clone().expect("root snapshot");
    let before = inventory.api_calls();
    let found = inventory
        .snapshots(
            &world.scope(OLD_ACCOUNT),
            &[snapshot.clone(), "snap-0123456789abcdef0".into()],
        )
        .await
        .unwrap();
    // The batch fails on the missing one; then one call each.
    assert_eq!(inventory.api_calls() - before, 3);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].description.as_deref(),
        Some(
            format!(
                "Created by CreateImage({}) for {}",
                world.scenario.instance("builder"),
                golden.id
            )
            .as_str()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_instance_is_reported_not_dialled() {
    let world = World::start();
    let inventory = world.inventory(true).await;
    let found = inventory
        .find_instances(&world.scope(DEFAULT_ACCOUNT), &host::classify("stopped-1"))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let stopped = &found[0];
    assert_eq!(stopped.state, InstanceState::Stopped);
    let why = reachable_state(stopped).unwrap_err();
    assert_eq!(
        why,
        format!(
            "{id} is stopped; start it with `aws ec2 start-instances --instance-ids {id} --region us-east-1`",
            id = stopped.id
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_down_is_unreachable_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let down = common::ClosedPort::new();
    let port = down.port;
    let config = dir.path().join("config");
    let credentials = dir.path().join("credentials");
    std::fs::write(&config, "[profile p]\nregion = us-east-1\n").unwrap();
    std::fs::write(
        &credentials,
        "[p]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = secret\n",
    )
    .unwrap();
    let endpoint = format!("http://127.0.0.1:{port}");
    let inventory = Ec2Inventory::new(Ec2Settings {
        regions: vec!["us-east-1".into()],
        default_profile: Some("p".into()),
        endpoint_url: Some(endpoint.clone()),
        config_file: Some(config),
        credentials_file: Some(credentials),
        ..Ec2Settings::default()
    })
    .await
    .unwrap();
    let started = Instant::now();
    let err = inventory
        .find_instances(
            &Scope::new(DEFAULT_ACCOUNT, "us-east-1"),
            &host::classify("web-1"),
        )
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "took {took:?}");
    match &err {
        InventoryError::Unreachable { endpoint: e, .. } => assert_eq!(*e, endpoint),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("EC2 API at {endpoint} unreachable: ")),
        "{text}"
    );
    assert!(!text.contains('\n'), "one line: {text}");
    assert_eq!(inventory.api_calls(), 1);
}

/// Runs `test` of this binary in a child process with `env` added (and the `AWS_*` endpoint
/// variables as given), returning its output.
fn run_child(test: &str, env: &[(String, String)]) -> std::process::Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("re-run the test binary")
}

#[test]
fn empty_endpoint_variables_do_not_panic() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let world = World::start();
    let base = world
        .scenario
        .aws_env(world.dir.path(), &world.moto.endpoint);
    let with = |extra: &[(&str, &str)]| {
        let mut env = base.clone();
        env.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    };
    // An empty service variable next to a good global one: the global one is used.
    let out = run_child(
        "child_resolves_web_1_from_the_environment",
        &with(&[("AWS_ENDPOINT_URL_EC2", "")]),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && stdout.contains(&format!("FOUND {}", world.scenario.instance("web-1"))),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Both empty: AWS's own endpoint (unreachable here: no internet), a clean error, no panic.
    // (The loader drops the profile's endpoint_url when the variable is set at all.)
    let out = run_child(
        "child_resolves_web_1_from_the_environment",
        &with(&[("AWS_ENDPOINT_URL_EC2", ""), ("AWS_ENDPOINT_URL", "")]),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && (stdout.contains("FOUND i-")
                || stdout.contains("ERROR EC2 API at ec2.us-east-1.amazonaws.com unreachable")),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Only does something in the child that `empty_endpoint_variables_do_not_panic` starts:
/// everything from the process environment, as the proxy runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_resolves_web_1_from_the_environment() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let inventory = Ec2Inventory::new(Ec2Settings::default()).await.unwrap();
    let scope = inventory.scopes()[0].clone();
    match inventory
        .find_instances(&scope, &host::classify("web-1"))
        .await
    {
        Ok(found) => {
            for instance in found {
                println!("FOUND {}", instance.id);
            }
        }
        Err(e) => println!("ERROR {e}"),
    }
}
