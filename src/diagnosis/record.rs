//! What a diagnosed login leaves behind: the record in the diagnostic log, the text a
//! refused client reads, and whether an interactive session gets a notice.

use crate::auth::{Method, Outcome, Verdict};
use crate::diaglog;
use crate::diagnosis::Login;
use crate::proxy::Proxy;
use crate::target::Refusal;

/// The text a client whose login failed is shown before the connection closes. OpenSSH
/// prints at most 400 characters of a disconnect message, so the paragraph is cut there
/// and points at the log, which holds it whole.
pub fn refusal_text(login: &Login) -> String {
    const LIMIT: usize = 400;
    const TAIL: &str = " ... Details: ec2-ssh-proxy log --last 1";
    let text = refusal_paragraph(login);
    if login.connect_error.is_some() || text.len() <= LIMIT {
        return text;
    }
    let mut cut = LIMIT - TAIL.len();
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{TAIL}", &text[..cut])
}

/// The whole explanation for a failed login, for places with room for it (a session's
/// stderr): the connection's own error, or "Permission denied" and the verdict's paragraph.
pub fn refusal_paragraph(login: &Login) -> String {
    if let Some(error) = &login.connect_error {
        return error.to_string();
    }
    format!(
        "ec2-ssh-proxy: Permission denied (publickey) for {}@{}. {} Details: ec2-ssh-proxy log --last 1",
        login.evidence.user, login.evidence.host, login.explanation.summary
    )
}

/// Whether the login used the key the user or the console expected: then nothing is said
/// on the terminal.
pub fn needs_notice(login: &Login) -> bool {
    login.upstream.is_some() && login.verdict != Verdict::Ok && login.explanation.notice.is_some()
}

/// The fields every record has; the rest start empty.
fn base(
    mode: diaglog::Mode,
    client: Option<&str>,
    user: &str,
    host: &str,
    verdict: Verdict,
    explanation: String,
) -> diaglog::Record {
    diaglog::Record {
        time: diaglog::now_rfc3339(),
        session_id: diaglog::new_session_id(),
        mode,
        client_addr: client.map(str::to_string),
        local_user: local_user(),
        login_user: user.to_string(),
        host: host.to_string(),
        instance_id: None,
        image_id: None,
        account: None,
        region: None,
        launch_key_pair: None,
        lineage: serde_json::Value::Null,
        attempts: Vec::new(),
        verdict: verdict.code().to_string(),
        explanation,
        fixes: Vec::new(),
        duration_ms: 0,
        extra: serde_json::Map::new(),
    }
}

fn append(proxy: &Proxy, record: diaglog::Record) -> diaglog::Record {
    if let Err(e) = proxy.diaglog.append(&record) {
        tracing::warn!("cannot write the diagnostic log: {e:#}");
    }
    record
}

/// Appends the connection's record to the diagnostic log: what was tried, the verdict and
/// how to fix it for good. Fingerprints and names only; never key material.
pub fn record(
    proxy: &Proxy,
    login: &Login,
    mode: diaglog::Mode,
    client: Option<&str>,
) -> diaglog::Record {
    let evidence = &login.evidence;
    let instance = evidence.instance.as_ref();
    let attempts = evidence
        .probes
        .iter()
        .map(|p| diaglog::AttemptRecord {
            key_name: p
                .candidate
                .key_pair
                .as_ref()
                .map(|(name, _)| name.clone())
                .or_else(|| {
                    p.candidate
                        .key_file
                        .as_ref()
                        .and_then(|f| f.file_name())
                        .map(|f| f.to_string_lossy().into_owned())
                }),
            fingerprint: p.candidate.fingerprint.clone(),
            source: serde_json::to_value(p.candidate.source)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            method: match p.method {
                Method::Query => diaglog::Method::Query,
                Method::Signature => diaglog::Method::Signature,
            },
            result: match &p.outcome {
                Outcome::Accepted => diaglog::AttemptResult::Accepted,
                Outcome::Refused => diaglog::AttemptResult::Refused,
                Outcome::NotAsked => diaglog::AttemptResult::Error("not asked".into()),
                Outcome::Error(e) => diaglog::AttemptResult::Error(e.clone()),
            },
        })
        // Keys never put to the server are not attempts.
        .filter(|a| a.result != diaglog::AttemptResult::Error("not asked".into()))
        .collect();
    let record = diaglog::Record {
        instance_id: instance.map(|i| i.id.clone()),
        image_id: instance.and_then(|i| i.image_id.clone()),
        account: instance.map(|i| i.account.clone()),
        region: instance.map(|i| i.region.clone()),
        launch_key_pair: instance.and_then(|i| i.key_name.clone()),
        lineage: serde_json::to_value(&evidence.lineage).unwrap_or_default(),
        attempts,
        fixes: login
            .explanation
            .fixes
            .iter()
            .map(|f| match &f.command {
                Some(command) => format!("{}: {command}", f.title),
                None => f.title.clone(),
            })
            .collect(),
        duration_ms: login.duration.as_millis() as u64,
        ..base(
            mode,
            client,
            &evidence.user,
            &evidence.host,
            login.verdict,
            login.explanation.summary.clone(),
        )
    };
    append(proxy, record)
}

/// The verdict for a destination refused before any SSH conversation.
pub fn verdict_of(refusal: &Refusal) -> Verdict {
    match refusal {
        Refusal::NotRunning { .. } => Verdict::InstanceNotRunning,
        Refusal::UnknownHost { .. } => Verdict::UnknownHost,
        Refusal::NoAddress { .. } => Verdict::Unreachable,
        Refusal::LookupFailed { .. } => Verdict::AwsError,
    }
}

/// Records a destination refused before any SSH conversation (stopped instance, unknown
/// host, failed lookup), so `ec2-ssh-proxy log` shows those connections too.
pub fn record_refusal(
    proxy: &Proxy,
    host: &str,
    user: &str,
    refusal: &Refusal,
    mode: diaglog::Mode,
    client: Option<&str>,
) -> diaglog::Record {
    let explanation = refusal.to_string();
    let explanation = explanation
        .trim_start_matches("ec2-ssh-proxy: ")
        .to_string();
    append(
        proxy,
        base(mode, client, user, host, verdict_of(refusal), explanation),
    )
}

fn local_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_default()
}
