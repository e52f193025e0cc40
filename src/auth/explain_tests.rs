use super::*;
use crate::auth::fixtures::{seed, seed_evidence};
use crate::auth::verdict::{decide, Outcome::*};
use crate::inventory::InstanceState;

fn explained(e: &Evidence) -> (Verdict, Explanation) {
    let v = decide(e);
    (v, explain(e, &v))
}

fn has(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "missing {part:?} in:\n{text}");
    }
}

#[test]
fn the_seed_case_cites_instance_pairs_ami_and_source_and_gives_three_fixes() {
    let s = seed();
    let e = seed_evidence(&s, &[Refused, Accepted]);
    let (v, x) = explained(&e);
    assert_eq!(v, Verdict::AmiBakedKey);
    let (new_fp, old_fp) = (s.keys[0].fingerprint(), s.keys[1].fingerprint());
    has(
        &x.summary,
        &[
            &format!("i-0abc (account 222222222222, us-east-1) was launched with key pair 'new-key' ({new_fp}), but refused it."),
            "Its AMI ami-0123 (owner 111111111111) was made from instance i-0src in account 111111111111 (SourceInstanceId of ami-0123), launched with key pair 'old-key'.",
            &format!("accepted 'old-key' ({old_fp}, account 111111111111, key file /home/u/.ssh/old-key.pem, tied to the AMI's source)"),
            &format!("Refused: 'new-key' ({new_fp}, account 222222222222, key file /home/u/.ssh/new-key.pem, the launch key pair)."),
        ],
    );
    assert_eq!(
        x.notice.as_deref(),
        Some("ec2-ssh-proxy: key pair 'new-key' was refused by i-0abc; connected with 'old-key' (AMI ami-0123 from account 111111111111 still carries its authorized_keys). Details: ec2-ssh-proxy log --last 1")
    );
    let commands: Vec<Option<&str>> = x.fixes.iter().map(|f| f.command.as_deref()).collect();
    assert_eq!(
        commands,
        [
            None,
            Some("ssh-keygen -y -f /home/u/.ssh/old-key.pem > /home/u/.ssh/old-key.pub && aws ec2 import-key-pair --key-name old-key --public-key-material fileb:///home/u/.ssh/old-key.pub --region us-east-1"),
            Some("ssh-keygen -y -f /home/u/.ssh/new-key.pem > /home/u/.ssh/new-key.pub && ssh ec2-user@web 'cat >> ~/.ssh/authorized_keys' < /home/u/.ssh/new-key.pub"),
        ]
    );
    has(&x.fixes[0].title, &["Keep using 'old-key'"]);
    has(
        &x.fixes[1].title,
        &["into account 222222222222 as key pair 'old-key'"],
    );
}

#[test]
fn an_import_that_would_clash_suggests_the_original_suffix() {
    let s = seed();
    let mut e = seed_evidence(&s, &[Refused, Accepted]);
    e.key_pairs_in_account.push("old-key".into());
    let x = explained(&e).1;
    has(
        &x.fixes[1].title,
        &[
            "already has a key pair named 'old-key'",
            "'old-key-original'",
        ],
    );
    has(
        x.fixes[1].command.as_deref().unwrap(),
        &["--key-name old-key-original "],
    );
}

#[test]
fn the_import_runs_with_the_profile_configured_for_the_instances_account() {
    let s = seed();
    let mut e = seed_evidence(&s, &[Refused, Accepted]);
    e.account_profile = Some("new-account".into());
    let x = explained(&e).1;
    assert!(
        x.fixes[1]
            .command
            .as_deref()
            .unwrap()
            .ends_with("--region us-east-1 --profile new-account"),
        "{:?}",
        x.fixes[1].command
    );
    // The default credentials need no --profile (the seed test above has none).
}

#[test]
fn other_key_accepted_names_the_unrelated_key() {
    let s = seed();
    let e = seed_evidence(&s, &[Refused, Refused, Accepted]);
    let (v, x) = explained(&e);
    assert_eq!(v, Verdict::OtherKeyAccepted);
    has(
        &x.summary,
        &[
            "It accepted 'id_other' (",
            "key file /home/u/.ssh/id_other, from the keyring)",
        ],
    );
    assert_eq!(
        x.notice.as_deref(),
        Some("ec2-ssh-proxy: key pair 'new-key' was refused by i-0abc; connected with 'id_other' (a key not tied to this instance's key pair or AMI). Details: ec2-ssh-proxy log --last 1")
    );
    has(
        x.fixes[1].command.as_deref().unwrap(),
        &["--key-name id_other ", "fileb:///home/u/.ssh/id_other.pub"],
    );
}

#[test]
fn ok_has_no_notice_and_no_fixes() {
    let s = seed();
    let (v, x) = explained(&seed_evidence(&s, &[Accepted]));
    assert_eq!(v, Verdict::Ok);
    assert_eq!(x.summary, format!("Logged in as ec2-user@i-0abc with 'new-key' ({}, account 222222222222, key file /home/u/.ssh/new-key.pem, the launch key pair).", s.keys[0].fingerprint()));
    assert_eq!((x.notice, x.fixes.len()), (None, 0));
}

#[test]
fn private_key_missing_names_the_public_only_pair() {
    let s = seed();
    let (v, x) = explained(&seed_evidence(&s, &[Refused, Refused, Refused, Accepted]));
    assert_eq!(v, Verdict::PrivateKeyMissing);
    has(
        &x.summary,
        &[
            "i-0abc accepts 'spare' (",
            "account 111111111111, public half only, from EC2, probe only)",
            "but the proxy holds only the public half",
        ],
    );
    has(&x.fixes[0].title, &["private key of 'spare'"]);
    assert_eq!(x.notice, None);
}

#[test]
fn wrong_user_says_which_user_and_the_command() {
    let s = seed();
    let mut e = seed_evidence(&s, &[Refused]);
    e.accepted_for_other_user = Some("ubuntu".into());
    let x = explained(&e).1;
    has(
        &x.summary,
        &[
            "No key was accepted for user 'ec2-user' on i-0abc",
            "the AMI's login user is 'ubuntu'",
        ],
    );
    assert_eq!(x.fixes[0].command.as_deref(), Some("ssh ubuntu@web"));
}

#[test]
fn no_accepted_key_lists_the_pairs_the_instance_may_hold() {
    let s = seed();
    let (v, x) = explained(&seed_evidence(&s, &[Refused, Refused, Refused, Refused]));
    assert_eq!(v, Verdict::NoAcceptedKey);
    has(&x.summary, &["No key the proxy holds is accepted for ec2-user@i-0abc.", "The instance may hold key pair 'new-key' (launch key pair, account 222222222222) or 'old-key' (AMI source, account 111111111111).", "Refused: 'new-key'"]);
}

#[test]
fn no_key_pair_cites_the_lineage_and_gaps() {
    let s = seed();
    let mut e = seed_evidence(&s, &[Refused, Refused]);
    e.instance.as_mut().unwrap().key_name = None;
    e.lineage
        .as_mut()
        .unwrap()
        .gaps
        .push("snapshot snap-1 is not visible: not in 222222222222".into());
    let (v, x) = explained(&e);
    assert_eq!(v, Verdict::NoKeyPair);
    has(
        &x.summary,
        &[
            "i-0abc was launched without a key pair",
            "instance i-0src",
            "Not learned: snapshot snap-1 is not visible: not in 222222222222.",
        ],
    );
}

#[test]
fn state_connection_and_lookup_problems_say_what_failed() {
    let s = seed();
    let mut e = seed_evidence(&s, &[]);
    e.connect_error = Some(ConnectError::Unreachable("connection timed out".into()));
    let x = explained(&e).1;
    has(
        &x.summary,
        &["Could not connect to i-0abc on port 22: connection timed out."],
    );
    has(&x.fixes[0].title, &["security group allows TCP 22"]);

    e.connect_error = Some(ConnectError::HostKeyChanged {
        pinned: "SHA256:pin".into(),
        presented: "SHA256:new".into(),
        pin_id: "i-0abc".into(),
        file: "/home/u/.local/state/ec2-ssh-proxy/pins".into(),
    });
    let x = explained(&e).1;
    has(
        &x.summary,
        &["i-0abc presented host key SHA256:new, but SHA256:pin is pinned for it"],
    );
    has(
        &x.fixes[0].title,
        &["delete the line for 'i-0abc' from /home/u/.local/state/ec2-ssh-proxy/pins"],
    );

    e.instance.as_mut().unwrap().state = InstanceState::Stopped;
    has(&explained(&e).1.summary, &["i-0abc is stopped; start it with `aws ec2 start-instances --instance-ids i-0abc --region us-east-1`"]);

    let e = Evidence {
        host: "nosuch".into(),
        user: "ec2-user".into(),
        ..Evidence::default()
    };
    assert_eq!(explained(&e).1.summary, "'nosuch' matches no instance in the configured accounts and regions, and nothing answered at that name.");

    let mut e = seed_evidence(&s, &[Refused]);
    e.instance = None;
    e.lineage = None;
    e.instance_error =
        Some("no AWS credentials for account 222222222222; configure a profile for it".into());
    let (v, x) = explained(&e);
    assert_eq!(v, Verdict::AwsError);
    has(&x.summary, &["The EC2 lookup for 'web' failed", "Refused: 'new-key'", "(EC2 lookup failed: no AWS credentials for account 222222222222; configure a profile for it.)"]);
}
