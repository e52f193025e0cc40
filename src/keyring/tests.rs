//! Key loading against real ssh-keygen output and a real ssh-agent.

use super::*;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::file::sidecar_public_key;

/// Generate `dir/name` with ssh-keygen; `args` pick type, format and passphrase.
fn keygen(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let output = Command::new("ssh-keygen")
        .args(["-q", "-C", name])
        .args(args)
        .arg("-f")
        .arg(&path)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    path
}

fn pub_of(path: &Path) -> PublicKey {
    sidecar_public_key(path).unwrap()
}

async fn load(paths: &[PathBuf]) -> Keyring {
    Keyring::load_with_agent(paths, None).await
}

#[tokio::test]
async fn every_supported_format_loads() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let files = [
        keygen(d, "ed25519", &["-t", "ed25519", "-N", ""]),
        keygen(d, "rsa_openssh", &["-t", "rsa", "-b", "2048", "-N", ""]),
        keygen(
            d,
            "rsa_pem.pem",
            &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", ""],
        ),
        keygen(
            d,
            "rsa_pkcs8",
            &["-t", "rsa", "-b", "2048", "-m", "PKCS8", "-N", ""],
        ),
        keygen(d, "ecdsa_pkcs8", &["-t", "ecdsa", "-m", "PKCS8", "-N", ""]),
        keygen(d, "ecdsa384", &["-t", "ecdsa", "-b", "384", "-N", ""]),
        keygen(d, "ecdsa_sec1", &["-t", "ecdsa", "-m", "PEM", "-N", ""]),
        keygen(
            d,
            "ecdsa384_pkcs8",
            &["-t", "ecdsa", "-b", "384", "-m", "PKCS8", "-N", ""],
        ),
    ];
    let ring = load(&files).await;
    assert!(ring.skipped.is_empty(), "{:?}", ring.skipped);
    assert_eq!(ring.keys.len(), files.len());
    for (key, file) in ring.keys.iter().zip(&files) {
        assert_eq!(key.source, KeySource::File(file.clone()));
        assert_eq!(key.public.key_data(), pub_of(file).key_data(), "{file:?}");
        assert!(key.private.is_some());
        // PEM files have no comment of their own; it comes from the .pub beside them.
        assert_eq!(key.comment, file.file_name().unwrap().to_str().unwrap());
    }
    let kinds: Vec<String> = ring
        .keys
        .iter()
        .map(|k| format!("{} {}", k.algorithm_name(), k.bits()))
        .collect();
    assert_eq!(
        kinds,
        [
            "ED25519 256",
            "RSA 2048",
            "RSA 2048",
            "RSA 2048",
            "ECDSA 256",
            "ECDSA 384",
            "ECDSA 256",
            "ECDSA 384"
        ]
    );
}

#[tokio::test]
async fn fingerprint_matches_ssh_keygen() {
    let dir = tempfile::tempdir().unwrap();
    let file = keygen(dir.path(), "k", &["-t", "ed25519", "-N", ""]);
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&file)
        .output()
        .unwrap();
    let listed = String::from_utf8(out.stdout).unwrap();
    let ring = load(&[file]).await;
    // "256 SHA256:... k (ED25519)"
    assert_eq!(
        listed.trim(),
        format!(
            "{} {} {} ({})",
            ring.keys[0].bits(),
            ring.keys[0].fingerprint(),
            ring.keys[0].comment,
            ring.keys[0].algorithm_name()
        )
    );
}

#[tokio::test]
async fn too_open_permissions_are_refused_like_openssh() {
    let dir = tempfile::tempdir().unwrap();
    let file = keygen(dir.path(), "open", &["-t", "ed25519", "-N", ""]);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let ring = load(std::slice::from_ref(&file)).await;
    assert!(ring.keys.is_empty());
    assert_eq!(ring.skipped.len(), 1);
    assert_eq!(ring.skipped[0].path, file);
    assert_eq!(
        ring.skipped[0].reason,
        format!(
            "permissions 0644 are too open; private keys must not be readable by others (chmod 600 {}), as OpenSSH requires",
            file.display()
        )
    );
}

#[tokio::test]
async fn encrypted_keys_without_agent_are_skipped_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let openssh = keygen(d, "enc", &["-t", "ed25519", "-N", "secret"]);
    let pem = keygen(
        d,
        "enc.pem",
        &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "secret"],
    );
    std::fs::remove_file(d.join("enc.pem.pub")).unwrap();
    let ring = load(&[openssh.clone(), pem.clone()]).await;
    assert!(ring.keys.is_empty());
    let reasons: Vec<&str> = ring.skipped.iter().map(|s| s.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            format!(
                "encrypted with a passphrase and not loaded in ssh-agent (ssh-add {})",
                openssh.display()
            ),
            format!(
                "encrypted with a passphrase and its public key is unknown (no {}.pub beside it); load it with ssh-add {}",
                pem.display(),
                pem.display()
            ),
        ]
    );
}

#[tokio::test]
async fn directory_scan_takes_only_private_keys_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keygen(d, "id_rsa", &["-t", "rsa", "-b", "2048", "-N", ""]);
    keygen(d, "id_ed25519", &["-t", "ed25519", "-N", ""]);
    std::fs::write(d.join("known_hosts"), "host ssh-ed25519 AAAA\n").unwrap();
    std::fs::write(d.join("config"), "Host *\n").unwrap();
    std::fs::write(d.join("authorized_keys"), "").unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    keygen(&d.join("sub"), "nested", &["-t", "ed25519", "-N", ""]);
    // Not readable as a key, but also not a key: must not be reported.
    std::fs::write(d.join("notes"), "-----BEGIN CERTIFICATE-----\n").unwrap();
    std::fs::set_permissions(d.join("notes"), std::fs::Permissions::from_mode(0o644)).unwrap();

    let ring = load(&[d.to_path_buf()]).await;
    assert!(ring.skipped.is_empty(), "{:?}", ring.skipped);
    let labels: Vec<String> = ring.keys.iter().map(KeyEntry::label).collect();
    assert_eq!(
        labels,
        [
            d.join("id_ed25519").display().to_string(),
            d.join("id_rsa").display().to_string()
        ]
    );
}

#[tokio::test]
async fn duplicates_keep_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let first = keygen(dir.path(), "first", &["-t", "ed25519", "-N", ""]);
    let copy = dir.path().join("copy");
    std::fs::copy(&first, &copy).unwrap();
    let ring = load(&[first.clone(), copy.clone()]).await;
    assert_eq!(ring.keys.len(), 1);
    assert_eq!(ring.keys[0].source, KeySource::File(first.clone()));
    assert_eq!(ring.skipped[0].path, copy);
    assert_eq!(
        ring.skipped[0].reason,
        format!("same key as {}", first.display())
    );
}

#[tokio::test]
async fn explicit_non_key_and_missing_paths_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("readme");
    std::fs::write(&text, "hello").unwrap();
    std::fs::set_permissions(&text, std::fs::Permissions::from_mode(0o600)).unwrap();
    let missing = dir.path().join("missing.pem");
    let ring = load(&[text, missing]).await;
    let reasons: Vec<&str> = ring.skipped.iter().map(|s| s.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "not a private key (expected an OpenSSH, PEM RSA, or PKCS#8 private key file)",
            "no such file or directory"
        ]
    );
}

#[tokio::test]
async fn render_list_shows_keys_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let good = keygen(dir.path(), "good", &["-t", "ed25519", "-N", ""]);
    let open = keygen(dir.path(), "open", &["-t", "ed25519", "-N", ""]);
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o640)).unwrap();
    let ring = load(&[good.clone(), open.clone()]).await;
    let text = ring.render_list();
    let fingerprint = ring.keys[0].fingerprint();
    assert_eq!(
        text,
        format!(
            "{}  ED25519 256  {fingerprint}  good\nskipped:\n  {}: permissions 0640 are too open; private keys must not be readable by others (chmod 600 {}), as OpenSSH requires\n",
            good.display(),
            open.display(),
            open.display()
        )
    );
    assert_eq!(load(&[]).await.render_list(), "no usable keys\n");
}

#[tokio::test]
async fn debug_never_shows_private_material() {
    let dir = tempfile::tempdir().unwrap();
    let file = keygen(dir.path(), "k", &["-t", "ed25519", "-N", ""]);
    let ring = load(&[file]).await;
    let shown = format!("{:?}", ring);
    assert!(shown.contains(&ring.keys[0].fingerprint()));
    let private = ring.keys[0].private.as_ref().unwrap();
    let secret = private.key_data().ed25519().unwrap().private.as_ref();
    let secret_hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let secret_dec = format!("{secret:?}");
    assert!(!shown.contains(&secret_hex) && !shown.contains(&secret_dec[1..20]));
}

/// An ssh-agent of our own on a socket in `dir`, killed on drop.
struct Agent {
    child: Child,
    socket: PathBuf,
}

impl Agent {
    fn start(dir: &Path) -> Agent {
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if socket.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Agent { child, socket }
    }

    fn add(&self, key: &Path) {
        let status = Command::new("ssh-add")
            .arg("-q")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.socket)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn agent_signs_for_encrypted_files_and_adds_its_own_keys() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let agent = Agent::start(d);
    // The agent gets the unencrypted original; the keyring sees a passphrase-protected copy.
    let plain = keygen(d, "plain", &["-t", "ed25519", "-N", ""]);
    agent.add(&plain);
    let keys = d.join("keys");
    std::fs::create_dir(&keys).unwrap();
    let encrypted = keys.join("encrypted");
    std::fs::copy(&plain, &encrypted).unwrap();
    let status = Command::new("ssh-keygen")
        .args(["-q", "-p", "-P", "", "-N", "secret", "-f"])
        .arg(&encrypted)
        .status()
        .unwrap();
    assert!(status.success());
    let agent_only = keygen(d, "agent_only", &["-t", "ed25519", "-N", ""]);
    agent.add(&agent_only);
    let usable = keygen(&keys, "usable", &["-t", "ed25519", "-N", ""]);
    agent.add(&usable);

    let ring = Keyring::load_with_agent(std::slice::from_ref(&keys), Some(&agent.socket)).await;
    assert!(ring.skipped.is_empty(), "{:?}", ring.skipped);
    let summary: Vec<(KeySource, bool, String)> = ring
        .keys
        .iter()
        .map(|k| (k.source.clone(), k.private.is_some(), k.comment.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (KeySource::File(encrypted), false, "plain".to_string()),
            (KeySource::File(usable), true, "usable".to_string()),
            (KeySource::Agent, false, "agent_only".to_string()),
        ]
    );
    assert_eq!(
        ring.keys[2].public.key_data(),
        pub_of(&agent_only).key_data()
    );
    assert!(ring.render_list().contains("plain (signs via ssh-agent)"));
}

#[tokio::test]
async fn unreachable_agent_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("no-agent.sock");
    let ring = Keyring::load_with_agent(&[], Some(&socket)).await;
    assert_eq!(ring.skipped.len(), 1);
    assert_eq!(ring.skipped[0].path, PathBuf::from("$SSH_AUTH_SOCK"));
    assert!(
        ring.skipped[0].reason.starts_with(&format!(
            "ssh-agent at {} is unreachable: ",
            socket.display()
        )),
        "{}",
        ring.skipped[0].reason
    );
}
