//! Hosts resolved through a file inventory (`inventory = "file:PATH"`): the user types an
//! instance id or Name tag, the proxy dials the instance's address on the port the user
//! gave, pins its host key under the instance id, and refuses a stopped instance without
//! dialling. Both modes.
#[macro_use]
mod common;

use common::*;

const RUNNING: &str = "i-0bbbbbbbbbbbbbbb2";
const STOPPED: &str = "i-0aaaaaaaaaaaaaaa1";

/// A world whose inventory holds a running instance on the test sshd's address (127.0.0.1)
/// and a stopped one; the inventory's directory lives as long as the returned guard.
fn world() -> (World, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("inventory.toml");
    std::fs::write(
        &inventory,
        format!(
            "[[instances]]\nid = \"{RUNNING}\"\naccount = \"222222222222\"\nregion = \"us-east-1\"\n\
             state = \"running\"\nkey_name = \"new-key\"\nprivate_ip = \"127.0.0.1\"\nname = \"web-2\"\n\n\
             [[instances]]\nid = \"{STOPPED}\"\naccount = \"222222222222\"\nregion = \"us-east-1\"\n\
             state = \"stopped\"\nkey_name = \"new-key\"\nprivate_ip = \"127.0.0.2\"\nname = \"web-old\"\n"
        ),
    )
    .unwrap();
    let w = World::builder()
        .config(&format!(
            "inventory = \"file:{}\"\naddress = \"private\"",
            inventory.display()
        ))
        .start();
    (w, dir)
}

fn instance_id_and_name_tag_resolve_to_the_instance(mode: Mode) {
    let (w, _inventory) = world();
    let port = w.sshd.port.to_string();
    for host in [RUNNING, "web-2"] {
        let out = w
            .ssh(mode)
            .args([
                "-p",
                &port,
                &format!("{}@{host}", w.user),
                "echo via-inventory",
            ])
            .timeout(30)
            .run();
        out.assert_success().assert_stdout("via-inventory\n");
    }
    let pins = std::fs::read_to_string(w.path("state/pinned_host_keys")).unwrap();
    assert!(
        pins.lines()
            .any(|l| l.starts_with(&format!("{RUNNING} ssh-ed25519 "))),
        "host key not pinned under the instance id:\n{pins}"
    );
}
both_modes!(instance_id_and_name_tag_resolve_to_the_instance);

fn a_stopped_instance_is_refused_with_its_state(mode: Mode) {
    let (w, _inventory) = world();
    let port = w.sshd.port.to_string();
    let out = w
        .ssh_info(mode)
        .args([
            "-p",
            &port,
            &format!("{}@{STOPPED}", w.user),
            "echo SHOULD-NOT-RUN",
        ])
        .timeout(30)
        .run();
    out.assert_code(255)
        .assert_stderr_contains(&format!("{STOPPED} is stopped"))
        .assert_stderr_contains("aws ec2 start-instances");
    assert!(
        !out.stdout_text().contains("SHOULD-NOT-RUN"),
        "{}",
        out.report()
    );
}
both_modes!(a_stopped_instance_is_refused_with_its_state);
