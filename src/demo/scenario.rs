//! The seed story as files on disk: two ed25519 key pairs ("old-key" from account A,
//! "new-key" from account B), a keyring holding both private halves under AWS's download
//! names, a file inventory describing the instance, the shared AMI and both key pairs, and
//! a config pointing the proxy at all of it. Everything lives in one temporary directory
//! that is removed when the scenario is dropped.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use russh::keys::ssh_key::LineEnding;
use russh::keys::{Algorithm, PrivateKey, PublicKey};

use crate::keys::ec2_fingerprint::{ec2_fingerprints, Ec2FingerprintKind};

pub const OLD_ACCOUNT: &str = "111111111111";
pub const NEW_ACCOUNT: &str = "222222222222";
pub const REGION: &str = "us-east-1";
pub const SOURCE_INSTANCE: &str = "i-0aaaaaaaaaaaaaaa1";
pub const SOURCE_IMAGE: &str = "ami-0ba5e000000000001";
pub const SHARED_IMAGE: &str = "ami-0a1d0000000000001";
pub const INSTANCE: &str = "i-0bbbbbbbbbbbbbbb2";
pub const OLD_KEY: &str = "old-key";
pub const NEW_KEY: &str = "new-key";
pub const LOGIN_USER: &str = "ec2-user";

/// The files of one demo run. The directory goes away on drop, so a failed run leaves
/// no private keys behind in /tmp.
pub struct Scenario {
    pub root: PathBuf,
    pub old_key: PrivateKey,
    pub new_key: PrivateKey,
    pub config_path: PathBuf,
    pub state_dir: PathBuf,
}

impl Scenario {
    /// Generates fresh keys (nothing secret ships in the binary) and writes the files.
    pub fn create() -> Result<Scenario> {
        let root = fresh_dir()?;
        // Assigned before anything else can fail, so Drop cleans up a half-written tree.
        let mut scenario = Scenario {
            root: root.clone(),
            old_key: generate()?,
            new_key: generate()?,
            config_path: root.join("config.toml"),
            state_dir: root.join("state"),
        };
        scenario.old_key.set_comment(OLD_KEY);
        scenario.new_key.set_comment(NEW_KEY);
        let keyring = root.join("keyring");
        fs::create_dir(&keyring).with_context(|| format!("cannot create {}", keyring.display()))?;
        write_private(&keyring.join(format!("{OLD_KEY}.pem")), &scenario.old_key)?;
        write_private(&keyring.join(format!("{NEW_KEY}.pem")), &scenario.new_key)?;
        let inventory = root.join("inventory.toml");
        let text = inventory_toml(scenario.old_key.public_key(), scenario.new_key.public_key())?;
        fs::write(&inventory, text)
            .with_context(|| format!("cannot write {}", inventory.display()))?;
        fs::write(&scenario.config_path, config_toml(&keyring, &inventory))
            .with_context(|| format!("cannot write {}", scenario.config_path.display()))?;
        Ok(scenario)
    }

    /// Which of the two key pairs `key` is, by its public half.
    pub fn key_name(&self, key: &PublicKey) -> Option<&'static str> {
        if key.key_data() == self.old_key.public_key().key_data() {
            Some(OLD_KEY)
        } else if key.key_data() == self.new_key.public_key().key_data() {
            Some(NEW_KEY)
        } else {
            None
        }
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn generate() -> Result<PrivateKey> {
    PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
        .context("cannot generate an ed25519 key")
}

/// A new private directory under the system temp dir; create_dir fails rather than reuse
/// an existing one, so two demos at once never share keys.
fn fresh_dir() -> Result<PathBuf> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir =
        std::env::temp_dir().join(format!("ec2-ssh-proxy-demo-{}-{nanos}", std::process::id()));
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("cannot create the demo directory {}", dir.display()))?;
    Ok(dir)
}

/// Mode 0600 from the first byte, as ssh and the keyring expect of private keys.
fn write_private(path: &Path, key: &PrivateKey) -> Result<()> {
    let text = key
        .to_openssh(LineEnding::LF)
        .context("cannot encode a demo key")?;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The fingerprint the EC2 console shows for an ed25519 key pair.
pub fn console_fingerprint(key: &PublicKey) -> String {
    ec2_fingerprints(None, key)
        .into_iter()
        .find(|fp| fp.kind == Ec2FingerprintKind::Ed25519)
        .map(|fp| fp.value)
        .unwrap_or_default()
}

/// The inventory as DescribeInstances/Images/KeyPairs would tell it (see
/// config/inventory.example.toml for the format): A's stopped source instance, the AMI made
/// from it and shared with B, B's running instance on 127.0.0.1, and both key pairs.
pub fn inventory_toml(old: &PublicKey, new: &PublicKey) -> Result<String> {
    let line = |key: &PublicKey| key.to_openssh().context("cannot encode a demo public key");
    let (old_line, new_line) = (line(old)?, line(new)?);
    let (old_fp, new_fp) = (console_fingerprint(old), console_fingerprint(new));
    Ok(format!(
        r#"# Written by `ec2-ssh-proxy demo`: the shared-AMI story on loopback.
[[instances]]
id = "{SOURCE_INSTANCE}"
account = "{OLD_ACCOUNT}"
region = "{REGION}"
state = "stopped"
key_name = "{OLD_KEY}"
image_id = "{SOURCE_IMAGE}"
name = "web-old"

[[instances]]
id = "{INSTANCE}"
account = "{NEW_ACCOUNT}"
region = "{REGION}"
state = "running"
key_name = "{NEW_KEY}"
image_id = "{SHARED_IMAGE}"
private_ip = "127.0.0.1"
name = "web"

[[images]]
id = "{SHARED_IMAGE}"
owner_account = "{OLD_ACCOUNT}"
region = "{REGION}"
name = "web-old-image"
description = "web server, moved to the new account"
platform_details = "Linux/UNIX"
source_instance_id = "{SOURCE_INSTANCE}"
shared_with = ["{NEW_ACCOUNT}"]

[[key_pairs]]
name = "{OLD_KEY}"
account = "{OLD_ACCOUNT}"
region = "{REGION}"
fingerprint = "{old_fp}"
public_key = "{old_line}"

[[key_pairs]]
name = "{NEW_KEY}"
account = "{NEW_ACCOUNT}"
region = "{REGION}"
fingerprint = "{new_fp}"
public_key = "{new_line}"
"#
    ))
}

/// The proxy's config: the demo keyring, the file inventory, and private addresses (the
/// instance's private_ip is where the throwaway server listens).
pub fn config_toml(keyring: &Path, inventory: &Path) -> String {
    // TOML basic strings: Debug quoting escapes backslashes and quotes the same way.
    format!(
        "keyring = [{:?}]\ninventory = {:?}\naddress = \"private\"\n",
        keyring.display().to_string(),
        format!("file:{}", inventory.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, InventorySource};
    use crate::inventory::file::FileInventory;

    #[test]
    fn inventory_parses_and_names_both_accounts() {
        let (old, new) = (generate().unwrap(), generate().unwrap());
        let text = inventory_toml(old.public_key(), new.public_key()).unwrap();
        let inventory = FileInventory::parse(&text, Path::new("demo.toml")).unwrap();
        let accounts: Vec<String> = inventory
            .scopes()
            .into_iter()
            .map(|s| s.account.clone())
            .collect();
        assert!(accounts.contains(&OLD_ACCOUNT.to_string()));
        assert!(accounts.contains(&NEW_ACCOUNT.to_string()));
        assert!(text.contains(&console_fingerprint(old.public_key())));
    }

    #[test]
    fn config_points_at_the_demo_files() {
        let text = config_toml(Path::new("/t/keyring"), Path::new("/t/inv.toml"));
        let config = Config::parse(&text, Path::new("demo.toml")).unwrap();
        assert_eq!(config.keyring, [PathBuf::from("/t/keyring")]);
        assert!(
            matches!(config.inventory, InventorySource::File(p) if p == Path::new("/t/inv.toml"))
        );
    }

    #[test]
    fn scenario_writes_private_keys_0600_and_cleans_up() {
        use std::os::unix::fs::PermissionsExt;
        let scenario = Scenario::create().unwrap();
        let pem = scenario.root.join("keyring/old-key.pem");
        let mode = fs::metadata(&pem).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            scenario.key_name(scenario.new_key.public_key()),
            Some(NEW_KEY)
        );
        let root = scenario.root.clone();
        drop(scenario);
        assert!(!root.exists());
    }
}
