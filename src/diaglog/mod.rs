//! The diagnostic log: one JSON record per connection saying which keys were tried, which
//! one the instance accepted, the verdict and its fixes; read back by `ec2-ssh-proxy log`.
//!
//! Records carry key names and fingerprints only, never key material: the log is meant to
//! be pasted into tickets.

mod file;
mod show;
mod time;
mod view;

pub use file::{read, read_counting, rotated_path, Contents, DiagLog, Follower, DEFAULT_MAX_BYTES};
pub use show::{show, ShowOptions};
pub use time::{format_rfc3339, now_rfc3339};
pub use view::{render, select, Filter};

use serde::{Deserialize, Serialize};

/// One connection, as written on one line of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// When the connection started, RFC 3339 UTC with milliseconds (`now_rfc3339`).
    pub time: String,
    /// Random hex (`new_session_id`), to find this connection in the proxy's stderr log.
    pub session_id: String,
    pub mode: Mode,
    /// The ssh client's address in jump mode; None for `connect` (our stdin is the client).
    #[serde(default)]
    pub client_addr: Option<String>,
    /// Who ran the proxy or the client, so a shared log says whose connection this was.
    pub local_user: String,
    /// The user asked for upstream (never changed by the proxy, even on `wrong-user`).
    pub login_user: String,
    /// The host exactly as typed, the thing the user will search the log for.
    pub host: String,
    #[serde(default)]
    pub instance_id: Option<String>,
    #[serde(default)]
    pub image_id: Option<String>,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    /// The instance's `KeyName`: the key pair AWS (and the user) expect to work.
    #[serde(default)]
    pub launch_key_pair: Option<String>,
    /// The AMI lineage as the inventory serializes it, kept as JSON so the log does not
    /// break when the inventory's types grow.
    #[serde(default)]
    pub lineage: serde_json::Value,
    /// Every key offered or asked about, in the order tried.
    #[serde(default)]
    pub attempts: Vec<AttemptRecord>,
    /// A stable verdict code (`ok`, `ami-baked-key`, `wrong-user`, ...).
    pub verdict: String,
    /// The verdict in plain English, citing the evidence.
    #[serde(default)]
    pub explanation: String,
    /// What to do about it, most advisable first.
    #[serde(default)]
    pub fixes: Vec<String>,
    pub duration_ms: u64,
    /// Fields written by other versions of the proxy, kept so `log --json` shows the record
    /// as it was written.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Which front end made the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `serve`: a client came through the jump host.
    Jump,
    /// `connect`: ProxyCommand over stdin/stdout.
    Connect,
    /// `diagnose`: the plan and probes without a session.
    Diagnose,
}

impl From<crate::proxy::Mode> for Mode {
    fn from(mode: crate::proxy::Mode) -> Self {
        match mode {
            crate::proxy::Mode::Jump => Mode::Jump,
            crate::proxy::Mode::Connect => Mode::Connect,
        }
    }
}

/// One key offered to (or asked about at) the instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// The EC2 key pair name or the key file's name, when known.
    #[serde(default)]
    pub key_name: Option<String>,
    /// `SHA256:...` as OpenSSH prints it, so it can be compared with `ssh-keygen -lf`.
    pub fingerprint: String,
    /// Where the key came from: a keyring file, the agent, an EC2 key pair, the cache.
    pub source: String,
    pub method: Method,
    pub result: AttemptResult,
}

/// How the key was put to the server (RFC 4252 section 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// A public-key query without a signature: "would you accept this key?".
    Query,
    /// A signed authentication request: a real login attempt.
    Signature,
}

/// What the server answered; written as "accepted", "refused" or "error: DETAIL".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum AttemptResult {
    Accepted,
    Refused,
    /// The attempt did not get an answer (disconnect, timeout, signing failure).
    Error(String),
}

impl std::fmt::Display for AttemptResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptResult::Accepted => f.write_str("accepted"),
            AttemptResult::Refused => f.write_str("refused"),
            AttemptResult::Error(detail) => write!(f, "error: {detail}"),
        }
    }
}

impl From<AttemptResult> for String {
    fn from(result: AttemptResult) -> String {
        result.to_string()
    }
}

impl From<String> for AttemptResult {
    /// Anything but the two fixed words is an error, so a record from another version
    /// still reads.
    fn from(text: String) -> Self {
        match text.as_str() {
            "accepted" => AttemptResult::Accepted,
            "refused" => AttemptResult::Refused,
            _ => AttemptResult::Error(text.strip_prefix("error: ").unwrap_or(&text).to_string()),
        }
    }
}

/// 16 random hex digits: unique enough to tell apart the connections of one log.
pub fn new_session_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The seed scenario's record: new-key refused, old-key (baked into the AMI) accepted.
    pub(crate) fn sample() -> Record {
        Record {
            time: "2026-11-29T10:00:00.000Z".into(),
            session_id: "00112233aabbccdd".into(),
            mode: Mode::Connect,
            client_addr: None,
            local_user: "alice".into(),
            login_user: "ec2-user".into(),
            host: "web-1".into(),
            instance_id: Some("i-0abc".into()),
            image_id: Some("ami-0123".into()),
            account: Some("222222222222".into()),
            region: Some("us-east-1".into()),
            launch_key_pair: Some("new-key".into()),
            lineage: serde_json::json!({"hops": [{"image_id": "ami-0123"}]}),
            attempts: vec![
                AttemptRecord {
                    key_name: Some("new-key".into()),
                    fingerprint: "SHA256:newnewnew".into(),
                    source: "~/.ssh/new-key.pem".into(),
                    method: Method::Signature,
                    result: AttemptResult::Refused,
                },
                AttemptRecord {
                    key_name: Some("old-key".into()),
                    fingerprint: "SHA256:oldoldold".into(),
                    source: "~/.ssh/old-key.pem".into(),
                    method: Method::Query,
                    result: AttemptResult::Accepted,
                },
            ],
            verdict: "ami-baked-key".into(),
            explanation: "Key pair 'new-key' was refused by i-0abc.".into(),
            fixes: vec!["Keep using old-key.".into()],
            duration_ms: 312,
            extra: Default::default(),
        }
    }

    #[test]
    fn a_record_is_one_json_line_with_the_documented_words() {
        let line = serde_json::to_string(&sample()).unwrap();
        assert!(!line.contains('\n'));
        for needle in [
            r#""mode":"connect""#,
            r#""method":"signature""#,
            r#""result":"refused""#,
            r#""result":"accepted""#,
            r#""verdict":"ami-baked-key""#,
            r#""duration_ms":312"#,
        ] {
            assert!(line.contains(needle), "{needle} not in {line}");
        }
        assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), sample());
    }

    #[test]
    fn attempt_errors_and_unknown_fields_survive_a_round_trip() {
        let mut record = sample();
        record.attempts[0].result = AttemptResult::Error("connection reset".into());
        let mut value = serde_json::to_value(&record).unwrap();
        value["written_by"] = "a later version".into();
        let text = value.to_string();
        assert!(
            text.contains(r#""result":"error: connection reset""#),
            "{text}"
        );
        let back: Record = serde_json::from_str(&text).unwrap();
        assert_eq!(back.attempts[0].result, record.attempts[0].result);
        assert_eq!(serde_json::to_value(&back).unwrap(), value);
    }

    #[test]
    fn a_record_built_from_a_real_key_holds_no_private_material() {
        use russh::keys::ssh_key::{HashAlg, LineEnding};
        let key =
            russh::keys::PrivateKey::random(&mut rand::rng(), russh::keys::Algorithm::Ed25519)
                .unwrap();
        let mut record = sample();
        record.attempts[0].fingerprint = key.public_key().fingerprint(HashAlg::Sha256).to_string();
        record.attempts[0].key_name = Some(key.comment().to_string());
        let line = serde_json::to_string(&record).unwrap();
        assert!(line.contains(&record.attempts[0].fingerprint));
        assert!(!line.contains("PRIVATE KEY"), "{line}");
        // No piece of the OpenSSH private key file's base64 body appears, nor the raw seed.
        let pem = key.to_openssh(LineEnding::LF).unwrap();
        for body_line in pem.lines().filter(|l| !l.starts_with("-----")) {
            for chunk in body_line.as_bytes().chunks(16).filter(|c| c.len() == 16) {
                let chunk = std::str::from_utf8(chunk).unwrap();
                assert!(
                    !line.contains(chunk),
                    "private key base64 {chunk:?} in {line}"
                );
            }
        }
        let seed = key.key_data().ed25519().unwrap().private.to_bytes();
        let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!line.contains(&hex));
    }

    #[test]
    fn session_ids_are_hex_and_differ() {
        let (a, b) = (new_session_id(), new_session_id());
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
