use super::*;
use crate::auth::fixtures::{self, seed, ACCOUNT_A, ACCOUNT_B};

fn summary(plan: &[Candidate]) -> Vec<(String, CandidateSource, bool)> {
    plan.iter()
        .map(|c| {
            let name = c
                .key_pair
                .as_ref()
                .map_or("-".to_string(), |(n, _)| n.clone());
            (name, c.source, c.can_sign)
        })
        .collect()
}

fn row(name: &str, source: CandidateSource, can_sign: bool) -> (String, CandidateSource, bool) {
    (name.to_string(), source, can_sign)
}

#[test]
fn seed_plan_tries_launch_pair_then_lineage_then_keyring_then_public_only() {
    let s = seed();
    let input = PlanInput {
        keys: &s.keys,
        links: &s.links,
        key_pairs: &s.pairs,
        instance: Some(&s.instance),
        lineage: Some(&s.lineage),
        offered: None,
        cached_winner: None,
    };
    let plan = attempt_plan(&input);
    assert_eq!(
        summary(&plan),
        [
            row("new-key", CandidateSource::LaunchKeyPair, true),
            row("old-key", CandidateSource::Lineage, true),
            row("-", CandidateSource::Keyring, true),
            row("spare", CandidateSource::AwsPublicOnly, false),
        ]
    );
    assert_eq!(plan[0].fingerprint, s.keys[0].fingerprint());
    assert_eq!(plan[0].key_pair, Some(("new-key".into(), ACCOUNT_B.into())));
    assert_eq!(plan[1].key_pair, Some(("old-key".into(), ACCOUNT_A.into())));
    assert_eq!(
        plan[1].key_file.as_deref(),
        Some(std::path::Path::new("/home/u/.ssh/old-key.pem"))
    );
    assert_eq!(plan[3].key_file, None);
}

#[test]
fn cached_winner_comes_first_and_offered_key_before_lineage_without_duplicates() {
    let s = seed();
    let winner = s.keys[1].fingerprint();
    let input = PlanInput {
        keys: &s.keys,
        links: &s.links,
        key_pairs: &s.pairs,
        instance: Some(&s.instance),
        lineage: Some(&s.lineage),
        offered: Some(&s.keys[2].public),
        cached_winner: Some(&winner),
    };
    let plan = attempt_plan(&input);
    assert_eq!(
        summary(&plan),
        [
            row("old-key", CandidateSource::CachedWinner, true),
            row("new-key", CandidateSource::LaunchKeyPair, true),
            row("-", CandidateSource::UserOffered, true),
            row("spare", CandidateSource::AwsPublicOnly, false),
        ]
    );
}

#[test]
fn keys_the_proxy_cannot_sign_with_are_not_offered_and_stale_winners_are_skipped() {
    let s = seed();
    let stranger = fixtures::key("/elsewhere");
    let input = PlanInput {
        keys: &s.keys,
        links: &s.links,
        instance: Some(&s.instance),
        offered: Some(&stranger.public),
        cached_winner: Some("SHA256:gone"),
        ..PlanInput::default()
    };
    let plan = attempt_plan(&input);
    assert!(plan.iter().all(|c| c.fingerprint != stranger.fingerprint()));
    assert_eq!(plan[0].source, CandidateSource::LaunchKeyPair);
    assert_eq!(plan.len(), 3);
}

#[test]
fn public_only_keys_are_ordered_launch_pair_then_source_pair_then_owner_accounts() {
    let s = seed();
    // An empty keyring: every candidate comes from EC2 and cannot sign.
    let input = PlanInput {
        key_pairs: &s.pairs[..],
        instance: Some(&s.instance),
        lineage: Some(&s.lineage),
        ..PlanInput::default()
    };
    let mut reversed = s.pairs.clone();
    reversed.reverse();
    let names: Vec<String> = [&s.pairs, &reversed]
        .iter()
        .flat_map(|pairs| {
            attempt_plan(&PlanInput {
                key_pairs: pairs,
                ..input
            })
        })
        .map(|c| c.key_pair.map(|(n, _)| n).unwrap_or_default())
        .collect();
    assert_eq!(
        names,
        ["new-key", "old-key", "spare", "new-key", "old-key", "spare"]
    );
}

#[test]
fn a_key_pair_in_another_region_is_not_the_launch_pair() {
    let s = seed();
    let mut elsewhere = s.pairs.clone();
    elsewhere[0].region = "eu-west-1".into();
    let links = crate::keys::links::link(&s.keys, &elsewhere, &[]);
    let plan = attempt_plan(&PlanInput {
        keys: &s.keys,
        links: &links,
        instance: Some(&s.instance),
        ..PlanInput::default()
    });
    assert!(plan
        .iter()
        .all(|c| c.source != CandidateSource::LaunchKeyPair));
}

#[test]
fn sources_serialize_as_stable_kebab_case_codes() {
    let codes: Vec<String> = [
        CandidateSource::CachedWinner,
        CandidateSource::LaunchKeyPair,
        CandidateSource::AwsPublicOnly,
    ]
    .iter()
    .map(|s| serde_json::to_string(s).unwrap())
    .collect();
    assert_eq!(
        codes,
        [
            "\"cached-winner\"",
            "\"launch-key-pair\"",
            "\"aws-public-only\""
        ]
    );
    let s = seed();
    let plan = attempt_plan(&PlanInput {
        key_pairs: &s.pairs,
        ..PlanInput::default()
    });
    let json = serde_json::to_string(&plan[0]).unwrap();
    assert!(json.contains("\"public_key\":\"ssh-ed25519 "), "{json}");
    let back: Candidate = serde_json::from_str(&json).unwrap();
    assert_eq!(back, plan[0]);
}

#[test]
fn default_users_follow_the_ami_name_and_platform() {
    let first =
        |name: Option<&str>, platform: Option<&str>| default_users(name, platform)[..2].to_vec();
    assert_eq!(
        first(Some("ubuntu/images/hvm-ssd/ubuntu-jammy-22.04"), None),
        ["ubuntu", "ec2-user"]
    );
    assert_eq!(
        first(Some("debian-12-amd64-2024"), None),
        ["admin", "debian"]
    );
    assert_eq!(
        first(Some("al2023-ami-2023.4"), None),
        ["ec2-user", "ubuntu"]
    );
    assert_eq!(
        first(None, Some("Red Hat Enterprise Linux")),
        ["ec2-user", "ubuntu"]
    );
    assert_eq!(first(Some("CentOS-7-x86_64"), None), ["centos", "ec2-user"]);
    assert_eq!(
        first(Some("Fedora-Cloud-Base-39"), None),
        ["fedora", "ec2-user"]
    );
    assert_eq!(first(Some("Rocky-9-EC2-Base"), None), ["rocky", "ec2-user"]);
    assert_eq!(
        first(Some("bitnami-wordpress-6.4-debian-12"), None),
        ["bitnami", "ec2-user"]
    );
    let all = default_users(None, None);
    assert_eq!(
        all,
        ["ec2-user", "ubuntu", "admin", "debian", "centos", "fedora", "rocky", "bitnami"]
    );
}
