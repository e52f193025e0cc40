//! The words for a verdict: one paragraph citing the evidence, the one-line terminal notice
//! after a retry that worked, and the fixes with exact commands. A pure function of the
//! evidence, so the log, the banner and `diagnose` say the same thing.

use serde::{Deserialize, Serialize};

use super::plan::{Candidate, CandidateSource};
use super::verdict::{ConnectError, Evidence, Tie, Verdict};
use crate::inventory::lineage::{self, Lineage};
use crate::inventory::reachable_state;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// One paragraph in plain English: the SSH banner, `diagnose` output and the log.
    pub summary: String,
    /// The line shown on a pty before the shell after a retry worked; None otherwise, and
    /// never for exec/scp/sftp sessions, which must stay byte-clean (the caller's rule).
    pub notice: Option<String>,
    pub fixes: Vec<Fix>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fix {
    pub title: String,
    /// A shell line to run as is; None when the fix is a decision, not a command.
    pub command: Option<String>,
}

impl Fix {
    fn say(title: String) -> Fix {
        Fix {
            title,
            command: None,
        }
    }

    fn run(title: String, command: String) -> Fix {
        Fix {
            title,
            command: Some(command),
        }
    }
}

pub fn explain(evidence: &Evidence, verdict: &Verdict) -> Explanation {
    let e = evidence;
    let target = target(e);
    let who = format!("{}@{target}", e.user);
    let (mut summary, fixes) = match (verdict, e.usable_key()) {
        (Verdict::Ok, Some(key)) => (
            format!("Logged in as {who} with {}.", describe(key)),
            vec![],
        ),
        (Verdict::AmiBakedKey, Some(key)) => (
            format!(
                "{} {} The instance's authorized_keys came with the AMI, so it accepted {} \
                 and the proxy connected with it. {}",
                refused_launch(e),
                lineage_story(e),
                describe(key),
                tried(e)
            ),
            repair(e, key),
        ),
        (Verdict::OtherKeyAccepted, Some(key)) => (
            format!(
                "{} It accepted {}, which is tied neither to the launch key pair nor to the \
                 AMI's source, and the proxy connected with it. {}",
                refused_launch(e),
                describe(key),
                tried(e)
            ),
            repair(e, key),
        ),
        (Verdict::PrivateKeyMissing, _) => private_key_missing(e),
        (Verdict::WrongUser, _) => {
            let other = e
                .accepted_for_other_user
                .as_deref()
                .unwrap_or("another user");
            (
                format!(
                    "No key was accepted for user '{}' on {target}, but the expected key is \
                     accepted for user '{other}': the AMI's login user is '{other}'. The \
                     proxy does not log in as a different user. {}",
                    e.user,
                    tried(e)
                ),
                vec![Fix::run(
                    format!("Connect as {other}"),
                    format!("ssh {other}@{}", e.host),
                )],
            )
        }
        (Verdict::NoKeyPair, _) => (
            format!(
                "{target} was launched without a key pair, and it refused every key the proxy \
                 holds. {} {}",
                lineage_story(e),
                tried(e)
            ),
            vec![Fix::say(
                "Find the private key of the AMI's source key pair, or relaunch with a key pair"
                    .into(),
            )],
        ),
        (Verdict::InstanceNotRunning, _) => not_running(e),
        (Verdict::UnknownHost, _) => (
            format!(
                "'{}' matches no instance in the configured accounts and regions, and \
                 nothing answered at that name.",
                e.host
            ),
            vec![Fix::say(
                "Check the name, or add the account and region that hold it to the config".into(),
            )],
        ),
        (Verdict::Unreachable, _) => unreachable(e, &target),
        (Verdict::HostKeyChanged, _) => host_key_changed(e, &target),
        (Verdict::AwsError, _) => (
            format!(
                "The EC2 lookup for '{}' failed, so the proxy cannot tell which key pair the \
                 instance was launched with. {}",
                e.host,
                tried(e)
            ),
            vec![Fix::say(
                "Check the AWS credentials and network access for the account, then run \
                 `ec2-ssh-proxy diagnose` again"
                    .into(),
            )],
        ),
        // No usable key behind a usable verdict, or nothing accepted: say what was tried.
        _ => no_accepted_key(e, &who),
    };
    if let Some(error) = &e.instance_error {
        summary.push_str(&format!(" (EC2 lookup failed: {error}.)"));
    }
    Explanation {
        summary: summary.trim_end().to_string(),
        notice: notice(e, verdict),
        fixes,
    }
}

/// The instance id when known, else the host as typed.
fn target(e: &Evidence) -> String {
    e.instance.as_ref().map_or(e.host.clone(), |i| i.id.clone())
}

/// How people know a key: by key pair (the console's name), else by its file.
fn name(c: &Candidate) -> String {
    if let Some((pair, _)) = &c.key_pair {
        return pair.clone();
    }
    c.key_file
        .as_ref()
        .and_then(|p| p.file_name())
        .map_or("agent key".into(), |f| f.to_string_lossy().into_owned())
}

fn describe(c: &Candidate) -> String {
    let mut parts = vec![c.fingerprint.clone()];
    if let Some((_, account)) = &c.key_pair {
        parts.push(format!("account {account}"));
    }
    parts.push(match &c.key_file {
        Some(path) => format!("key file {}", path.display()),
        None if c.can_sign => "ssh-agent".into(),
        None => "public half only, from EC2".into(),
    });
    let from = match c.source {
        CandidateSource::CachedWinner => "worked last time",
        CandidateSource::LaunchKeyPair => "the launch key pair",
        CandidateSource::UserOffered => "the key you offered",
        CandidateSource::Lineage => "tied to the AMI's source",
        CandidateSource::Keyring => "from the keyring",
        CandidateSource::AwsPublicOnly => "probe only",
    };
    parts.push(from.into());
    format!("'{}' ({})", name(c), parts.join(", "))
}

fn list(keys: Vec<&Candidate>) -> String {
    keys.into_iter()
        .map(describe)
        .collect::<Vec<_>>()
        .join("; ")
}

/// "Refused: ...; accepted: ..." for every summary that involved probes.
fn tried(e: &Evidence) -> String {
    let refused: Vec<&Candidate> = e.refused().collect();
    let accepted: Vec<&Candidate> = e.accepted().collect();
    match (refused.is_empty(), accepted.is_empty()) {
        (true, true) => "No key was put to the server.".into(),
        (false, true) => format!("Refused: {}.", list(refused)),
        (true, false) => format!("Accepted: {}.", list(accepted)),
        (false, false) => format!("Refused: {}. Accepted: {}.", list(refused), list(accepted)),
    }
}

fn launch_key(e: &Evidence) -> Option<&Candidate> {
    e.probes
        .iter()
        .map(|p| &p.candidate)
        .find(|c| e.tie(c) == Tie::Launch)
}

/// "i-0abc (account B, region) was launched with key pair 'new-key' (fp) but refused it."
fn refused_launch(e: &Evidence) -> String {
    let Some(instance) = &e.instance else {
        return format!("{} refused the expected key.", e.host);
    };
    let place = format!(
        "{} (account {}, {})",
        instance.id, instance.account, instance.region
    );
    let Some((pair, _)) = e.launch_pair() else {
        return format!("{place} was launched without a key pair.");
    };
    let fp = launch_key(e).map_or(String::new(), |c| format!(" ({})", c.fingerprint));
    let refused =
        launch_key(e).is_some_and(|l| e.refused().any(|r| r.fingerprint == l.fingerprint));
    let what = if refused {
        "but refused it"
    } else {
        "but was not asked about it"
    };
    format!("{place} was launched with key pair '{pair}'{fp}, {what}.")
}

/// The account the AMI originally came from.
fn origin_account(lineage: &Lineage) -> Option<&str> {
    match &lineage.source {
        Some(source) => Some(&source.account),
        None => lineage.hops.last().map(|h| h.image.owner_account.as_str()),
    }
}

/// The AMI chain back to its source instance and key pair, and what could not be learned.
fn lineage_story(e: &Evidence) -> String {
    let Some(lineage) = &e.lineage else {
        return String::new();
    };
    let mut out = Vec::new();
    for (i, hop) in lineage.hops.iter().enumerate() {
        let lead = if i == 0 {
            "Its AMI"
        } else {
            "which is a copy of"
        };
        out.push(format!(
            "{lead} {} (owner {})",
            hop.image.id, hop.image.owner_account
        ));
    }
    let mut text = out.join(", ");
    if let Some(source) = &lineage.source {
        let how = match &source.learned_from {
            lineage::Evidence::DescribeImages { image_id, field } => {
                format!("{field} of {image_id}")
            }
            lineage::Evidence::SnapshotDescription { snapshot_id, .. } => {
                format!("the description of snapshot {snapshot_id}")
            }
            _ => "the image description".into(),
        };
        text.push_str(&format!(
            " was made from instance {} in account {} ({how})",
            source.instance_id, source.account
        ));
        if let Some(pair) = &lineage.source_key_pair {
            text.push_str(&format!(", launched with key pair '{}'", pair.name));
            if let Some(fp) = &pair.fingerprint {
                text.push_str(&format!(" ({fp})"));
            }
        }
    }
    if !text.is_empty() {
        text.push('.');
    }
    if !lineage.gaps.is_empty() {
        text.push_str(&format!(" Not learned: {}.", lineage.gaps.join("; ")));
    }
    text
}

/// The three fixes of issue 4: keep the key, import it under its name, or install the
/// launch key pair's key.
fn repair(e: &Evidence, key: &Candidate) -> Vec<Fix> {
    let mut fixes = vec![Fix::say(format!(
        "Keep using '{}': the proxy does so, and tries it first next time",
        name(key)
    ))];
    let Some(instance) = &e.instance else {
        return fixes;
    };
    let original = name(key);
    let (title, import_as) = if e.key_pairs_in_account.contains(&original) {
        let alt = format!("{original}-original");
        (format!("Account {} already has a key pair named '{original}'; import the original public key as '{alt}' and launch with it", instance.account), alt)
    } else {
        (format!("Import the original public key into account {} as key pair '{original}' and launch with it, so the console names the key the instance accepts", instance.account), original)
    };
    let (prep, pub_path) = public_file(key, &import_as);
    fixes.push(Fix::run(
        title,
        format!(
            "{prep}aws ec2 import-key-pair --key-name {import_as} --public-key-material fileb://{pub_path} --region {}{}",
            instance.region,
            e.account_profile
                .as_ref()
                .map(|p| format!(" --profile {p}"))
                .unwrap_or_default()
        ),
    ));
    if let (Some((pair, _)), Some(launch)) = (e.launch_pair(), launch_key(e)) {
        let (prep, pub_path) = public_file(launch, pair);
        fixes.push(Fix::run(
            format!("Add key pair '{pair}''s public key to {}'s authorized_keys (through the proxy, which logs in with '{}')", instance.id, name(key)),
            format!("{prep}ssh {}@{} 'cat >> ~/.ssh/authorized_keys' < {pub_path}", e.user, e.host),
        ));
    }
    fixes
}

/// A command prefix that makes the `.pub` file if needed, and its path. AWS `.pem`
/// downloads come without one; agent and EC2-only keys have no file at all.
fn public_file(c: &Candidate, pair: &str) -> (String, String) {
    match &c.key_file {
        Some(path) if path.extension().is_some_and(|x| x == "pem") => {
            let public = path.with_extension("pub").display().to_string();
            (
                format!("ssh-keygen -y -f {} > {public} && ", path.display()),
                public,
            )
        }
        Some(path) => (String::new(), format!("{}.pub", path.display())),
        None => {
            let line = c.public_key.to_openssh().unwrap_or_default();
            (
                format!("echo '{line}' > {pair}.pub && "),
                format!("{pair}.pub"),
            )
        }
    }
}

fn private_key_missing(e: &Evidence) -> (String, Vec<Fix>) {
    let accepted: Vec<&Candidate> = e.accepted().collect();
    let names: Vec<String> = accepted.iter().map(|c| format!("'{}'", name(c))).collect();
    (
        format!(
            "{} accepts {} for user '{}', but the proxy holds only the public half. {}",
            target(e),
            list(accepted),
            e.user,
            tried(e)
        ),
        vec![Fix::run(
            format!("Add the private key of {} (the .pem AWS offered when the pair was created) to the keyring's paths, then check it is linked", names.join(" or ")),
            "ec2-ssh-proxy keyring list".into(),
        )],
    )
}

fn no_accepted_key(e: &Evidence, who: &str) -> (String, Vec<Fix>) {
    let mut might = Vec::new();
    if let Some((pair, account)) = e.launch_pair() {
        might.push(format!("'{pair}' (launch key pair, account {account})"));
    }
    if let Some(source) = e.lineage.as_ref().and_then(|l| l.source_key_pair.as_ref()) {
        might.push(format!(
            "'{}' (AMI source, account {})",
            source.name, source.account
        ));
    }
    let hold = match might.is_empty() {
        true => String::new(),
        false => format!(" The instance may hold key pair {}.", might.join(" or ")),
    };
    (
        format!(
            "No key the proxy holds is accepted for {who}. {}{hold} {}",
            tried(e),
            lineage_story(e)
        ),
        vec![Fix::run(
            "Add the private key of one of those key pairs to the keyring's paths".into(),
            "ec2-ssh-proxy keyring list".into(),
        )],
    )
}

fn not_running(e: &Evidence) -> (String, Vec<Fix>) {
    let Some(instance) = &e.instance else {
        return (format!("{} is not running.", e.host), vec![]);
    };
    let reason = reachable_state(instance).err().unwrap_or_default();
    (format!("{reason}."), vec![])
}

fn unreachable(e: &Evidence, target: &str) -> (String, Vec<Fix>) {
    let reason = match &e.connect_error {
        Some(ConnectError::Unreachable(reason)) => reason.as_str(),
        _ => "no answer",
    };
    (
        format!("Could not connect to {target} on port 22: {reason}. No key was tried."),
        vec![Fix::say(
            "Check that the security group allows TCP 22 from this address, that the \
             instance has a public address (or you are on its VPC), and the subnet's \
             network ACL"
                .into(),
        )],
    )
}

fn host_key_changed(e: &Evidence, target: &str) -> (String, Vec<Fix>) {
    let Some(ConnectError::HostKeyChanged {
        pinned,
        presented,
        pin_id,
        file,
    }) = &e.connect_error
    else {
        return (format!("{target}'s host key has changed."), Vec::new());
    };
    // Records written before the pin's name and file were kept have neither.
    let remove = if file.is_empty() {
        "remove its pin from the proxy's pins file".to_string()
    } else {
        format!("delete the line for '{pin_id}' from {file}")
    };
    (
        format!("{target} presented host key {presented}, but {pinned} is pinned for it; the proxy stopped before sending any key."),
        vec![Fix::say(format!("If {target} was rebuilt or replaced, {remove} and connect again; otherwise do not connect: someone could be intercepting the connection"))],
    )
}

/// The pty line after a refusal the proxy worked around.
fn notice(e: &Evidence, verdict: &Verdict) -> Option<String> {
    if !matches!(verdict, Verdict::AmiBakedKey | Verdict::OtherKeyAccepted) {
        return None;
    }
    let key = e.usable_key()?;
    let first_refused = e.refused().next()?;
    let refused = match (e.launch_pair(), launch_key(e)) {
        (Some((pair, _)), Some(l)) if e.refused().any(|r| r.fingerprint == l.fingerprint) => {
            format!("key pair '{pair}'")
        }
        _ => format!("key '{}'", name(first_refused)),
    };
    let why = match (
        verdict,
        e.instance.as_ref().and_then(|i| i.image_id.as_ref()),
    ) {
        (Verdict::AmiBakedKey, Some(ami)) => {
            let from = e.lineage.as_ref().and_then(origin_account);
            let from = from.map_or(String::new(), |a| format!(" from account {a}"));
            format!("AMI {ami}{from} still carries its authorized_keys")
        }
        _ => "a key not tied to this instance's key pair or AMI".into(),
    };
    Some(format!(
        "ec2-ssh-proxy: {refused} was refused by {}; connected with '{}' ({why}). Details: ec2-ssh-proxy log --last 1",
        target(e),
        name(key)
    ))
}

#[cfg(test)]
#[path = "explain_tests.rs"]
mod tests;
