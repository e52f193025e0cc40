//! The proxy resolving hosts through the EC2 API (moto's server): the user types an
//! instance id or a private DNS name, the proxy finds the instance (web-1, private address
//! 127.0.0.11, where a real sshd plays it), dials it on the user's port and pins its host
//! key under the instance id. A warm cache answers the next connection with no API call;
//! an EC2 endpoint that is down costs a clear message, not a hang.
#[macro_use]
mod common;

use common::moto::{Moto, Scenario};
use common::*;
use std::time::{Duration, Instant};

struct Ec2World {
    w: World,
    scenario: Scenario,
    _moto: Moto,
    _dir: tempfile::TempDir,
}

fn ec2_world(endpoint_override: Option<String>) -> Ec2World {
    let dir = tempfile::tempdir().unwrap();
    let old = keygen(&dir.path().join("old-key"), "old-key");
    let new = keygen(&dir.path().join("new-key"), "new-key");
    let moto = Moto::start();
    let scenario = moto.scenario(&old, &new);
    let endpoint = endpoint_override.unwrap_or_else(|| moto.endpoint.clone());
    let env = scenario.aws_env(dir.path(), &endpoint);
    let w = World::builder()
        .sshd_on(&scenario.web("private_ip"))
        .config(&format!(
            "inventory = \"aws\"\nregions = [\"{}\"]\naddress = \"private\"",
            scenario.region()
        ))
        .env(&env)
        .start();
    Ec2World {
        w,
        scenario,
        _moto: moto,
        _dir: dir,
    }
}

fn instance_id_and_private_dns_resolve_through_ec2(mode: Mode) {
    let e = ec2_world(None);
    let (w, id) = (&e.w, e.scenario.instance("web-1"));
    let port = w.sshd.port.to_string();
    for host in [id.clone(), e.scenario.web("private_dns")] {
        w.ssh(mode)
            .args(["-p", &port, &w.dest_for(&host), "echo via-ec2"])
            .timeout(30)
            .run()
            .assert_success()
            .assert_stdout("via-ec2\n");
    }
    let pins = std::fs::read_to_string(w.path("state/pinned_host_keys")).unwrap();
    assert!(
        pins.lines().any(|l| l.starts_with(&format!("{id} "))),
        "host key not pinned under {id}:\n{pins}"
    );
}
both_modes!(instance_id_and_private_dns_resolve_through_ec2);

/// `connect` is a new process per connection: the second one finds the instance in the
/// state directory's cache and makes no EC2 call.
#[test]
fn a_warm_cache_makes_no_ec2_call() {
    let e = ec2_world(None);
    let (w, id) = (&e.w, e.scenario.instance("web-1"));
    let port = w.sshd.port.to_string();
    let run = || {
        w.ssh(Mode::ProxyCommand)
            .env("RUST_LOG", "ec2_ssh_proxy=debug")
            .args(["-p", &port, &w.dest_for(&id), "echo ok"])
            .timeout(30)
            .run()
    };
    let first = run();
    first
        .assert_success()
        .assert_stderr_contains("inventory lookup");
    assert!(first.stderr.contains("api_calls=1"), "{}", first.report());
    let second = run();
    second
        .assert_success()
        .assert_stderr_contains("inventory lookup answered from the cache")
        .assert_stderr_contains("api_calls=0");
    assert!(
        !second.stderr.contains("api_calls=1"),
        "{}",
        second.report()
    );
}

/// The EC2 endpoint is down: jump mode cannot tell whether it may relay, so it refuses with
/// the reason, quickly; `connect` dials a host typed as an address anyway.
#[test]
fn an_ec2_endpoint_that_is_down_is_explained_not_waited_on() {
    let down = ClosedPort::new();
    let e = ec2_world(Some(format!("http://127.0.0.1:{}", down.port)));
    let (w, id) = (&e.w, e.scenario.instance("web-1"));
    let port = w.sshd.port.to_string();
    let started = Instant::now();
    let out = w
        .ssh_info(Mode::Jump)
        .args(["-p", &port, &w.dest_for(&id), "echo SHOULD-NOT-RUN"])
        .timeout(60)
        .run();
    out.assert_code(255)
        .assert_stderr_contains(&format!("cannot look up {id} in EC2"))
        .assert_stderr_contains("unreachable");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    w.ssh(Mode::ProxyCommand)
        .args([
            "-p",
            &port,
            &w.dest_for(&w.sshd.ip),
            "echo dialled-as-typed",
        ])
        .timeout(60)
        .run()
        .assert_success()
        .assert_stdout("dialled-as-typed\n");
}

/// `keyring list` ties the local key file to the AWS key pair (by its public key, read from
/// DescribeKeyPairs in the configured account) and lists the pairs the keyring cannot sign
/// for, which the instance can still be asked about.
#[test]
fn keyring_list_links_local_keys_to_key_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = dir.path().join("keyring");
    std::fs::create_dir(&keyring).unwrap();
    let old = keygen(&keyring.join("old-key"), "old-key");
    std::fs::remove_file(keyring.join("old-key.pub")).unwrap();
    let new = keygen(&dir.path().join("new-key"), "new-key");
    let moto = Moto::start();
    let scenario = moto.scenario(&old, &new);
    let config = dir.path().join("proxy.toml");
    std::fs::write(
        &config,
        format!(
            "keyring = [\"{}\"]\ninventory = \"aws\"\nregions = [\"{}\"]\n[accounts.\"{}\"]\nprofile = \"{}\"\n",
            keyring.display(),
            scenario.region(),
            common::moto::OLD_ACCOUNT,
            common::moto::OLD_PROFILE
        ),
    )
    .unwrap();
    let out = std::process::Command::new(proxy_bin())
        .arg("--config")
        .arg(&config)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .args(["keyring", "list"])
        .envs(scenario.aws_env(dir.path(), &moto.endpoint))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "key pair: 'old-key' in account 111111111111 (us-east-1), linked by same public key"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("'new-key' in the default credentials' account (us-east-1)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&fingerprint(&keyring.join("old-key"))),
        "{stdout}"
    );
}
