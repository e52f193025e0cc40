//! Public-key probing against a real sshd: a query without a signature learns whether the
//! server would accept a key, from the public half alone; refusals count against sshd's
//! MaxAuthTries (6), acceptances do not.
mod common;

use std::sync::Arc;

use common::*;
use ec2_ssh_proxy::relay::probe::{ask, Answer};
use russh::client;
use russh::keys::{PublicKey, PublicKeyOrCertificate};

struct AnyHostKey;

impl client::Handler for AnyHostKey {
    type Error = russh::Error;
    async fn check_server_key(
        &mut self,
        _key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

fn public(path: &std::path::Path) -> PublicKey {
    russh::keys::load_public_key(pub_path(path)).unwrap()
}

async fn connect(sshd: &Sshd) -> client::Handle<AnyHostKey> {
    client::connect(Arc::new(client::Config::default()), sshd.addr(), AnyHostKey)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_server_says_which_key_it_accepts_without_a_signature() {
    let dir = tempfile::tempdir().unwrap();
    let held = dir.path().join("held");
    let line = keygen(&held, "held");
    let strangers: Vec<PublicKey> = (0..6)
        .map(|i| {
            let p = dir.path().join(format!("stranger{i}"));
            keygen(&p, "stranger");
            public(&p)
        })
        .collect();
    let sshd = Sshd::start(&[line]);
    let user = login_user();

    // Five refusals, then the held key: still answered on the same connection.
    let mut up = connect(&sshd).await;
    for key in &strangers[..5] {
        assert_eq!(ask(&mut up, &user, key, None).await, Answer::Refused);
    }
    assert_eq!(
        ask(&mut up, &user, &public(&held), None).await,
        Answer::Accepted
    );
    // An acceptance does not count: one more refusal is still the fifth... and a sixth
    // refusal ends the connection, as sshd's MaxAuthTries says.
    assert_eq!(
        ask(&mut up, &user, &strangers[5], None).await,
        Answer::Closed
    );
    // sshd logs the disconnect just after sending it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let too_many = |log: &str| {
        log.contains("Too many authentication failures")
            || log.contains("maximum authentication attempts exceeded")
    };
    while !too_many(&sshd.log()) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(too_many(&sshd.log()), "{}", sshd.log());
    // Nobody logged in: a probe never authenticates.
    assert!(!sshd.log().contains("Accepted publickey"), "{}", sshd.log());
}

/// Twelve keys, the held one last: the prober moves to a fresh connection after five
/// refusals, finds it, and sshd never reaches "Too many authentication failures".
#[tokio::test]
async fn twelve_keys_with_the_held_one_last() {
    use ec2_ssh_proxy::relay::prober::probe_in_order;
    let dir = tempfile::tempdir().unwrap();
    let held = dir.path().join("held");
    let line = keygen(&held, "held");
    let mut keys: Vec<PublicKey> = (0..11)
        .map(|i| {
            let p = dir.path().join(format!("k{i}"));
            keygen(&p, "other");
            public(&p)
        })
        .collect();
    keys.push(public(&held));
    let sshd = Sshd::start(&[line]);
    let user = login_user();
    let first = connect(&sshd).await;
    let probing = probe_in_order(first, 0, &user, &keys, None, 3, || async {
        Some(connect(&sshd).await)
    })
    .await;
    assert_eq!(probing.answers.len(), 12);
    assert_eq!(probing.answers[11], Answer::Accepted);
    assert!(probing.answers[..11].iter().all(|a| *a == Answer::Refused));
    assert_eq!(probing.reconnects, 2);
    assert!(probing.upstream.is_some());
    let log = sshd.log();
    assert!(!log.contains("Too many authentication failures"), "{log}");
    assert!(
        !log.contains("maximum authentication attempts exceeded"),
        "{log}"
    );
}
