use super::*;
use crate::auth::fixtures::{plan, probe, seed, seed_evidence};

use Outcome::{Accepted, NotAsked, Refused};

#[test]
fn the_seed_case_is_an_ami_baked_key() {
    let s = seed();
    let e = seed_evidence(&s, &[Refused, Accepted]);
    assert_eq!(decide(&e), Verdict::AmiBakedKey);
    assert_eq!(exit_code(decide(&e)), 0);
}

#[test]
fn the_launch_key_working_is_ok() {
    let s = seed();
    assert_eq!(decide(&seed_evidence(&s, &[Accepted])), Verdict::Ok);
}

#[test]
fn a_cached_ami_key_keeps_its_verdict_without_a_probe_of_the_launch_key() {
    let s = seed();
    let mut e = seed_evidence(&s, &[]);
    let mut cached = plan(&s)[1].clone();
    cached.source = CandidateSource::CachedWinner;
    e.probes = vec![probe(&cached, Accepted)];
    assert_eq!(decide(&e), Verdict::AmiBakedKey);
}

#[test]
fn an_unrelated_keyring_key_is_other_key_accepted() {
    let s = seed();
    let e = seed_evidence(&s, &[Refused, Refused, Accepted]);
    assert_eq!(decide(&e), Verdict::OtherKeyAccepted);
}

#[test]
fn without_a_launch_pair_the_offered_key_is_the_expected_one() {
    let s = seed();
    let mut e = seed_evidence(&s, &[NotAsked, NotAsked, Accepted]);
    e.instance = None;
    e.lineage = None;
    e.offered = Some(plan(&s)[2].fingerprint.clone());
    assert_eq!(decide(&e), Verdict::Ok);
    // Nothing refused: the first key tried simply worked.
    e.offered = None;
    assert_eq!(decide(&e), Verdict::Ok);
    // A key was refused before another one worked: that is worth saying.
    let mut refused_first = seed_evidence(&s, &[Refused, NotAsked, Accepted]);
    refused_first.instance = None;
    refused_first.lineage = None;
    assert_eq!(decide(&refused_first), Verdict::OtherKeyAccepted);
}

#[test]
fn only_a_public_half_accepted_is_private_key_missing() {
    let s = seed();
    let e = seed_evidence(&s, &[Refused, Refused, Refused, Accepted]);
    assert_eq!(decide(&e), Verdict::PrivateKeyMissing);
    assert_eq!(exit_code(Verdict::PrivateKeyMissing), 1);
}

#[test]
fn a_key_accepted_for_another_default_user_is_wrong_user() {
    let s = seed();
    let mut e = seed_evidence(&s, &[Refused, Refused, Refused, Refused]);
    e.accepted_for_other_user = Some("ubuntu".into());
    assert_eq!(decide(&e), Verdict::WrongUser);
}

#[test]
fn nothing_accepted_is_no_accepted_key_or_no_key_pair() {
    let s = seed();
    let mut e = seed_evidence(&s, &[Refused, Refused, Refused, Refused]);
    assert_eq!(decide(&e), Verdict::NoAcceptedKey);
    e.instance.as_mut().unwrap().key_name = None;
    assert_eq!(decide(&e), Verdict::NoKeyPair);
}

#[test]
fn state_and_connection_problems_come_before_keys() {
    let s = seed();
    let mut e = seed_evidence(&s, &[]);
    e.connect_error = Some(ConnectError::Unreachable("connection timed out".into()));
    assert_eq!(decide(&e), Verdict::Unreachable);
    e.connect_error = Some(ConnectError::HostKeyChanged {
        pinned: "SHA256:a".into(),
        presented: "SHA256:b".into(),
        pin_id: "web-1:22".into(),
        file: "/state/pins".into(),
    });
    assert_eq!(decide(&e), Verdict::HostKeyChanged);
    e.instance.as_mut().unwrap().state = InstanceState::Stopped;
    assert_eq!(decide(&e), Verdict::InstanceNotRunning);
}

#[test]
fn no_instance_and_no_answer_is_unknown_host() {
    let mut e = Evidence {
        host: "nosuch".into(),
        ..Evidence::default()
    };
    assert_eq!(decide(&e), Verdict::UnknownHost);
    // A plain DNS host that answered but refused everything is not unknown.
    let s = seed();
    e.probes = vec![probe(&plan(&s)[2], Refused)];
    assert_eq!(decide(&e), Verdict::NoAcceptedKey);
}

#[test]
fn a_failed_lookup_is_aws_error_unless_a_key_was_accepted() {
    let s = seed();
    let mut e = seed_evidence(&s, &[Refused, Refused, Refused]);
    e.instance = None;
    e.lineage = None;
    e.instance_error = Some("EC2 API at ec2.us-east-1.amazonaws.com unreachable: timeout".into());
    assert_eq!(decide(&e), Verdict::AwsError);
    e.probes[2].outcome = Accepted;
    // The probe's finding stands; the lookup error is carried in the evidence.
    assert_eq!(decide(&e), Verdict::OtherKeyAccepted);
}

#[test]
fn codes_are_stable_and_round_trip() {
    let codes: Vec<&str> = Verdict::ALL.iter().map(Verdict::code).collect();
    assert_eq!(
        codes,
        [
            "ok",
            "ami-baked-key",
            "other-key-accepted",
            "wrong-user",
            "no-accepted-key",
            "private-key-missing",
            "no-key-pair",
            "instance-not-running",
            "unknown-host",
            "unreachable",
            "host-key-changed",
            "aws-error"
        ]
    );
    for v in Verdict::ALL {
        assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{v}\""));
        assert_eq!(Verdict::from_code(v.code()), Some(v));
    }
    let usable: Vec<Verdict> = Verdict::ALL
        .into_iter()
        .filter(|v| exit_code(*v) == 0)
        .collect();
    assert_eq!(
        usable,
        [Verdict::Ok, Verdict::AmiBakedKey, Verdict::OtherKeyAccepted]
    );
}

#[test]
fn host_key_records_from_before_the_pin_file_was_kept_still_read() {
    let old: ConnectError = serde_json::from_str(
        r#"{"host-key-changed":{"pinned":"SHA256:a","presented":"SHA256:b"}}"#,
    )
    .unwrap();
    assert_eq!(
        old,
        ConnectError::HostKeyChanged {
            pinned: "SHA256:a".into(),
            presented: "SHA256:b".into(),
            pin_id: String::new(),
            file: String::new(),
        }
    );
}
