//! What the probes mean: one verdict per login, with a stable code for the log, the
//! `log --verdict` filter and `diagnose`'s exit status.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::plan::{lineage_accounts, Candidate, CandidateSource};
use crate::inventory::lineage::Lineage;
use crate::inventory::{Instance, InstanceState};

/// The outcome of one login, by cause. Codes are stable: logs and scripts match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The expected key worked: the launch key pair's, or the user's own without one.
    Ok,
    /// The launch key pair was refused and a key tied to the AMI's source was accepted.
    AmiBakedKey,
    /// A keyring key unrelated to the launch pair and to the AMI was accepted.
    OtherKeyAccepted,
    /// Nothing was accepted for this user, but a key was accepted for another default user.
    WrongUser,
    NoAcceptedKey,
    /// The instance accepts a key pair of which we hold only the public half.
    PrivateKeyMissing,
    /// Launched without a key pair, and nothing we hold worked.
    NoKeyPair,
    InstanceNotRunning,
    UnknownHost,
    Unreachable,
    HostKeyChanged,
    /// The EC2 lookup failed and no key was accepted (see `decide`).
    AwsError,
}

impl Verdict {
    pub const ALL: [Verdict; 12] = [
        Verdict::Ok,
        Verdict::AmiBakedKey,
        Verdict::OtherKeyAccepted,
        Verdict::WrongUser,
        Verdict::NoAcceptedKey,
        Verdict::PrivateKeyMissing,
        Verdict::NoKeyPair,
        Verdict::InstanceNotRunning,
        Verdict::UnknownHost,
        Verdict::Unreachable,
        Verdict::HostKeyChanged,
        Verdict::AwsError,
    ];

    pub fn code(&self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::AmiBakedKey => "ami-baked-key",
            Verdict::OtherKeyAccepted => "other-key-accepted",
            Verdict::WrongUser => "wrong-user",
            Verdict::NoAcceptedKey => "no-accepted-key",
            Verdict::PrivateKeyMissing => "private-key-missing",
            Verdict::NoKeyPair => "no-key-pair",
            Verdict::InstanceNotRunning => "instance-not-running",
            Verdict::UnknownHost => "unknown-host",
            Verdict::Unreachable => "unreachable",
            Verdict::HostKeyChanged => "host-key-changed",
            Verdict::AwsError => "aws-error",
        }
    }

    /// The verdict with this code, for `log --verdict V`.
    pub fn from_code(code: &str) -> Option<Verdict> {
        Verdict::ALL.into_iter().find(|v| v.code() == code)
    }

    /// True when the proxy holds a key the instance accepts for this user.
    pub fn usable(&self) -> bool {
        matches!(
            self,
            Verdict::Ok | Verdict::AmiBakedKey | Verdict::OtherKeyAccepted
        )
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// `diagnose`'s exit status: 0 when a usable key exists, 1 when not (2, usage, is clap's).
pub fn exit_code(verdict: Verdict) -> u8 {
    if verdict.usable() {
        0
    } else {
        1
    }
}

/// How a candidate was put to the server (RFC 4252 section 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// "Would you accept this key?" without a signature: costs no private key, but counts
    /// against sshd's MaxAuthTries when refused.
    Query,
    Signature,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Accepted,
    Refused,
    /// Left out: an earlier key was accepted or the probe budget ran out.
    NotAsked,
    Error(String),
}

/// One key put to the server for the login user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub candidate: Candidate,
    pub method: Method,
    pub outcome: Outcome,
}

/// Why no SSH conversation took place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectError {
    /// Timeout or refusal at TCP level, with the reason as the OS gave it.
    Unreachable(String),
    /// The host key differs from the pinned one: the proxy stopped before authenticating.
    HostKeyChanged {
        pinned: String,
        presented: String,
        /// The pin's name in `file` (the instance id, or host:port).
        #[serde(default)]
        pin_id: String,
        /// The proxy's pins file, where that line is to be deleted.
        #[serde(default)]
        file: String,
    },
}

/// Everything known about one login attempt: the input of `decide` and of `explain`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// As the user typed it: what to echo back when no instance matched.
    pub host: String,
    pub user: String,
    pub instance: Option<Instance>,
    /// Why the EC2 lookup failed, when it did; the probes still ran against `host`.
    pub instance_error: Option<String>,
    pub lineage: Option<Lineage>,
    /// For the login user, in the order asked.
    pub probes: Vec<ProbeResult>,
    /// Another default user for whom the expected key was accepted.
    pub accepted_for_other_user: Option<String>,
    pub connect_error: Option<ConnectError>,
    pub logged_in_with: Option<Candidate>,
    /// Fingerprint of the key the user's client offered: the expected key when the
    /// instance has no launch key pair (or is not known).
    pub offered: Option<String>,
    /// Key pair names in the instance's account and region: the import fix must not
    /// collide with one of them.
    pub key_pairs_in_account: Vec<String>,
    /// The AWS profile configured for the instance's account (`[accounts."ID"]`), for the
    /// `aws` commands in the fixes; None = the user's default credentials.
    pub account_profile: Option<String>,
}

/// How an accepted or refused key relates to this instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tie {
    Launch,
    Lineage,
    Unrelated,
}

impl Evidence {
    /// (name, account) of the launch key pair.
    pub(crate) fn launch_pair(&self) -> Option<(&str, &str)> {
        let instance = self.instance.as_ref()?;
        Some((instance.key_name.as_deref()?, instance.account.as_str()))
    }

    /// The key the login went (or can go) through: the one used, else the first accepted
    /// key the proxy can sign with.
    pub(crate) fn usable_key(&self) -> Option<&Candidate> {
        self.logged_in_with
            .as_ref()
            .or_else(|| self.accepted().find(|c| c.can_sign))
    }

    pub(crate) fn accepted(&self) -> impl Iterator<Item = &Candidate> {
        self.with_outcome(|o| *o == Outcome::Accepted)
    }

    pub(crate) fn refused(&self) -> impl Iterator<Item = &Candidate> {
        self.with_outcome(|o| *o == Outcome::Refused)
    }

    /// Each key once: a key accepted by query and then by signature is one acceptance.
    fn with_outcome(&self, wanted: impl Fn(&Outcome) -> bool) -> impl Iterator<Item = &Candidate> {
        let mut seen = std::collections::HashSet::new();
        self.probes
            .iter()
            .filter(move |p| wanted(&p.outcome))
            .map(|p| &p.candidate)
            .filter(move |c| seen.insert(c.fingerprint.clone()))
    }

    /// Classified by key pair rather than by plan position: a cached winner keeps its
    /// meaning (an AMI-baked key stays one on the next, probe-free connection).
    pub(crate) fn tie(&self, candidate: &Candidate) -> Tie {
        let pair = candidate
            .key_pair
            .as_ref()
            .map(|(n, a)| (n.as_str(), a.as_str()));
        if pair.is_some() && pair == self.launch_pair() {
            return Tie::Launch;
        }
        let source = self
            .lineage
            .as_ref()
            .and_then(|l| l.source_key_pair.as_ref());
        let accounts = lineage_accounts(self.lineage.as_ref(), self.instance.as_ref());
        let from_lineage = candidate.source == CandidateSource::Lineage
            || pair.is_some_and(|(n, a)| {
                source.is_some_and(|s| s.name == n && s.account == a)
                    || accounts.iter().any(|acc| acc == a)
            });
        if from_lineage {
            Tie::Lineage
        } else {
            Tie::Unrelated
        }
    }

    /// True for the key the user's client offered (and the proxy could sign with).
    pub(crate) fn is_offered(&self, candidate: &Candidate) -> bool {
        candidate.source == CandidateSource::UserOffered
            || self.offered.as_deref() == Some(candidate.fingerprint.as_str())
    }
}

/// The verdict for `evidence`. Order, first match wins:
/// 1. instance-not-running: a stopped instance also fails to connect, and its state is the
///    cause to report, so it goes before the connection problems;
/// 2. unreachable, host-key-changed: no key was put to the server;
/// 3. a usable accepted key: ok (launch pair's key, or the user's own when there is no
///    launch pair), ami-baked-key (tied to the AMI's lineage), else other-key-accepted;
/// 4. private-key-missing: only keys we cannot sign with were accepted;
/// 5. wrong-user;
/// 6. aws-error: the lookup failed and nothing was accepted. When a key *was* accepted,
///    the probe verdict of step 3-5 stands (it is what the user needs) and the lookup error
///    rides along in `Evidence::instance_error`, which the explanation quotes; without a
///    key, no-key-pair / unknown-host would be claims about EC2 data we never saw;
/// 7. unknown-host: no instance matched and nothing answered;
/// 8. no-key-pair, else no-accepted-key.
pub fn decide(evidence: &Evidence) -> Verdict {
    if let Some(instance) = &evidence.instance {
        if instance.state != InstanceState::Running {
            return Verdict::InstanceNotRunning;
        }
    }
    match &evidence.connect_error {
        Some(ConnectError::Unreachable(_)) => return Verdict::Unreachable,
        Some(ConnectError::HostKeyChanged { .. }) => return Verdict::HostKeyChanged,
        None => {}
    }
    if let Some(key) = evidence.usable_key() {
        // Without a launch key pair, the user's own key is the expected one; and when nothing
        // was refused at all, the first key tried simply worked.
        let expected = evidence.launch_pair().is_none()
            && (evidence.is_offered(key) || evidence.refused().next().is_none());
        return match evidence.tie(key) {
            Tie::Launch => Verdict::Ok,
            _ if expected => Verdict::Ok,
            Tie::Lineage => Verdict::AmiBakedKey,
            Tie::Unrelated => Verdict::OtherKeyAccepted,
        };
    }
    if evidence.accepted().next().is_some() {
        return Verdict::PrivateKeyMissing;
    }
    if evidence.accepted_for_other_user.is_some() {
        return Verdict::WrongUser;
    }
    if evidence.instance_error.is_some() {
        return Verdict::AwsError;
    }
    let answered = evidence.refused().next().is_some();
    match &evidence.instance {
        None if !answered => Verdict::UnknownHost,
        Some(instance) if instance.key_name.is_none() => Verdict::NoKeyPair,
        _ => Verdict::NoAcceptedKey,
    }
}

#[cfg(test)]
#[path = "verdict_tests.rs"]
mod tests;
