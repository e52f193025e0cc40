//! The seed's EC2 world shared by the diagnosis tests: moto's EC2 API where web-1 (account
//! 222222222222) was launched with `new-key` from an AMI that 111111111111 made from an
//! instance launched with `old-key`, and a real sshd on web-1's address. Which keys the
//! proxy holds and which the sshd accepts are the test's choice.

use std::process::Command;

use serde_json::Value;

use super::moto::{Moto, Scenario, OLD_ACCOUNT, OLD_PROFILE};
use super::*;

pub struct SeedWorld {
    pub w: World,
    pub scenario: Scenario,
    /// web-1's instance id.
    pub id: String,
    pub old_fp: String,
    pub new_fp: String,
    _moto: Moto,
    _dir: tempfile::TempDir,
}

/// `keyring`: which of "old-key"/"new-key" the proxy holds (as NAME.pem, AWS's download
/// name); `authorized`: which the instance's sshd accepts.
pub fn seed_world(keyring: &[&str], authorized: &[&str]) -> SeedWorld {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("old-key"), dir.path().join("new-key"));
    let old_pub = keygen(&old, "old-key");
    let new_pub = keygen(&new, "new-key");
    let moto = Moto::start();
    let scenario = moto.scenario(&old_pub, &new_pub);
    let public = |name: &str| {
        if name == "old-key" {
            old_pub.clone()
        } else {
            new_pub.clone()
        }
    };
    let mut builder = World::builder()
        .sshd_on(&scenario.web("private_ip"))
        .authorized(&authorized.iter().map(|n| public(n)).collect::<Vec<_>>());
    for name in keyring {
        let path = if *name == "old-key" { &old } else { &new };
        builder = builder.keyring_key(&format!("{name}.pem"), path);
    }
    let w = builder
        .config(&format!(
            "inventory = \"aws\"\nregions = [\"{}\"]\naddress = \"private\"\n[accounts.\"{OLD_ACCOUNT}\"]\nprofile = \"{OLD_PROFILE}\"",
            scenario.region()
        ))
        .env(&scenario.aws_env(dir.path(), &moto.endpoint))
        .start();
    SeedWorld {
        id: scenario.instance("web-1"),
        old_fp: fingerprint(&old),
        new_fp: fingerprint(&new),
        w,
        scenario,
        _moto: moto,
        _dir: dir,
    }
}

/// The seed exactly: the proxy holds both keys, the instance accepts only old-key.
pub fn seed() -> SeedWorld {
    seed_world(&["old-key", "new-key"], &["old-key"])
}

/// The diagnostic records written so far, oldest first.
pub fn records(w: &World) -> Vec<Value> {
    let text = std::fs::read_to_string(w.path("state/diagnostics.jsonl")).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad record {l:?}: {e}")))
        .collect()
}

pub fn last_record(w: &World) -> Value {
    records(w)
        .pop()
        .unwrap_or_else(|| panic!("no diagnostic record{}", w.diagnostics()))
}

/// `ec2-ssh-proxy --config C --state-dir S ARGS...` with the world's environment (AWS).
pub fn proxy_cmd(w: &World, args: &[&str]) -> Output {
    let mut c = Command::new(proxy_bin());
    c.envs(w.env.iter().map(|(k, v)| (k, v)))
        .args(w.proxy.base_args())
        .args(args);
    Cmd::from_command(
        c,
        format!(
            "{}\u{0}{}",
            w.proxy.log_path.display(),
            w.sshd.log_path.display()
        ),
    )
    .timeout(30)
    .run()
}
