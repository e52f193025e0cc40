//! What the demo prints: the scenario, what the proxy tried, the result and the command's
//! output, as plain sections for a person. Kept apart from the orchestration so that the
//! wording can be tested without running any SSH.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use serde_json::Value;

use super::client::Outcome;
use super::instance::AuthEvent;
use super::scenario::*;
use super::COMMAND;
use crate::pins;

/// One public-key request the instance answered, named for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tried {
    pub key: String,
    pub fingerprint: String,
    pub user: String,
    pub signed: bool,
    pub accepted: bool,
}

impl Tried {
    pub fn from_event(scenario: &Scenario, event: &AuthEvent) -> Tried {
        Tried {
            key: scenario
                .key_name(&event.key)
                .unwrap_or("an unknown key")
                .to_string(),
            fingerprint: pins::fingerprint(&event.key),
            user: event.user.clone(),
            signed: event.signed,
            accepted: event.accepted,
        }
    }
}

fn heading(out: &mut String, title: &str) {
    let _ = writeln!(out, "\n== {title} ==");
}

pub fn scenario_section(scenario: &Scenario, port: u16) -> String {
    let old = console_fingerprint(scenario.old_key.public_key());
    let new = console_fingerprint(scenario.new_key.public_key());
    let mut out = String::new();
    heading(&mut out, "The scenario");
    let _ = writeln!(
        out,
        "- Account {OLD_ACCOUNT} ran {SOURCE_INSTANCE} with key pair '{OLD_KEY}' ({old}).\n\
         - It made AMI {SHARED_IMAGE} from that instance (which copied\n  \
         /home/{LOGIN_USER}/.ssh/authorized_keys into the image) and shared it with {NEW_ACCOUNT}.\n\
         - Account {NEW_ACCOUNT} launched {INSTANCE} (\"web\") from that AMI with its own\n  \
         key pair '{NEW_KEY}' ({new}). The console says '{NEW_KEY}'.\n\
         - The instance is a throwaway SSH server on 127.0.0.1:{port} that, like the real one,\n  \
         accepts only '{OLD_KEY}' for {LOGIN_USER}.\n\
         - Your keyring holds {OLD_KEY}.pem and {NEW_KEY}.pem. You run, through the proxy:\n  \
         ssh -i {NEW_KEY}.pem {LOGIN_USER}@{INSTANCE} '{COMMAND}'"
    );
    out
}

pub fn tried_section(tried: &[Tried]) -> String {
    let mut out = String::new();
    heading(&mut out, "What the proxy tried (as the instance saw it)");
    if tried.is_empty() {
        let _ = writeln!(
            out,
            "- nothing: the proxy never asked the instance about a key"
        );
    }
    for t in tried {
        // sshd checks the key before the signature: "offered" is that check, "signed"
        // the proof that the proxy holds the private half.
        let how = if t.signed { "signed with" } else { "offered" };
        let answer = if t.accepted { "accepted" } else { "refused" };
        let _ = writeln!(
            out,
            "- {how} '{}' ({}) as {}: {answer}",
            t.key, t.fingerprint, t.user
        );
    }
    out
}

/// The proxy's own diagnosis when it wrote one; otherwise what the instance's side shows.
pub fn result_section(record: Option<&Value>, tried: &[Tried]) -> String {
    let mut out = String::new();
    heading(&mut out, "The result");
    let field = |name: &str| {
        record
            .and_then(|r| r.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    match (field("verdict"), field("explanation")) {
        (Some(verdict), explanation) => {
            let _ = writeln!(out, "Verdict: {verdict}");
            if let Some(text) = explanation {
                out.push_str(&wrap(&text, 88));
            }
            let fixes = record
                .and_then(|r| r.get("fixes"))
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>())
                .unwrap_or_default();
            if !fixes.is_empty() {
                out.push_str("\nHow to fix it for good:\n");
                for (n, fix) in fixes.iter().enumerate() {
                    let _ = writeln!(out, "{}. {fix}", n + 1);
                }
            }
        }
        (None, _) => {
            out.push_str(&wrap(&summary(tried), 88));
            out.push_str(&wrap(
                "(The proxy wrote no diagnosis record to diagnostics.jsonl in its state \
                 directory, so there is no verdict to show.)",
                88,
            ));
        }
    }
    out
}

/// Refused keys, then the key that got in, from the instance's point of view.
pub fn summary(tried: &[Tried]) -> String {
    let mut refused: Vec<String> = Vec::new();
    for t in tried.iter().filter(|t| !t.accepted) {
        let name = format!("'{}'", t.key);
        if !refused.contains(&name) {
            refused.push(name);
        }
    }
    let winner = tried.iter().find(|t| t.signed && t.accepted);
    match (refused.is_empty(), winner) {
        (true, Some(w)) => format!("The instance accepted '{}' at once.", w.key),
        (false, Some(w)) => format!(
            "The instance refused {} and accepted '{}': the proxy logged in with '{}' as {}.",
            refused.join(", "),
            w.key,
            w.key,
            w.user
        ),
        (_, None) if refused.is_empty() => "The proxy made no login attempt.".to_string(),
        (_, None) => format!(
            "The instance refused {} and no key got in.",
            refused.join(", ")
        ),
    }
}

pub fn output_section(outcome: &Result<Outcome>) -> String {
    let mut out = String::new();
    heading(&mut out, "The command's output");
    let _ = writeln!(out, "$ {COMMAND}");
    match outcome {
        Ok(o) => {
            out.push_str(&String::from_utf8_lossy(&o.stdout));
            if !o.stderr.is_empty() {
                let _ = write!(out, "(stderr) {}", String::from_utf8_lossy(&o.stderr));
            }
            if !out.ends_with('\n') {
                out.push('\n');
            }
            match o.exit_status {
                Some(status) => {
                    let _ = writeln!(out, "exit status: {status}");
                }
                None => {
                    let _ = writeln!(out, "no exit status: the command did not finish");
                }
            }
        }
        Err(e) => {
            let _ = writeln!(out, "the command did not run: {e:#}");
        }
    }
    out
}

/// The newest record of the diagnostic log, if there is a readable one.
pub fn last_record(path: &Path) -> Option<Value> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| last_json_line(&text))
}

fn last_json_line(text: &str) -> Option<Value> {
    text.lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .and_then(|line| serde_json::from_str(line).ok())
}

/// Greedy word wrap, so long explanations read well on an 80-100 column terminal.
pub fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tried(key: &str, signed: bool, accepted: bool) -> Tried {
        Tried {
            key: key.into(),
            fingerprint: "SHA256:x".into(),
            user: "ec2-user".into(),
            signed,
            accepted,
        }
    }

    #[test]
    fn summary_names_the_refused_and_the_accepted_key() {
        let events = [
            tried("new-key", false, false),
            tried("old-key", false, true),
            tried("old-key", true, true),
        ];
        assert_eq!(
            summary(&events),
            "The instance refused 'new-key' and accepted 'old-key': the proxy logged in with 'old-key' as ec2-user."
        );
        assert_eq!(
            summary(&[tried("new-key", true, false)]),
            "The instance refused 'new-key' and no key got in."
        );
    }

    #[test]
    fn the_last_log_line_is_the_record() {
        let text =
            "{\"verdict\":\"ok\"}\n{\"verdict\":\"ami-baked-key\",\"explanation\":\"x\"}\n\n";
        let record = last_json_line(text).unwrap();
        assert_eq!(record["verdict"], "ami-baked-key");
        assert!(last_json_line("not json\n").is_none());
        assert!(last_record(Path::new("/nonexistent/diagnostics.jsonl")).is_none());
    }

    #[test]
    fn result_prefers_the_proxys_verdict() {
        let record: Value = serde_json::json!({"verdict": "ami-baked-key", "explanation": "The AMI carries old-key."});
        let text = result_section(Some(&record), &[]);
        assert!(text.contains("Verdict: ami-baked-key"));
        assert!(text.contains("The AMI carries old-key."));
        let text = result_section(None, &[tried("old-key", true, true)]);
        assert!(text.contains("accepted 'old-key' at once"));
    }

    #[test]
    fn wrap_keeps_lines_within_width() {
        let text = wrap("aaa bbb ccc ddd", 7);
        assert_eq!(text, "aaa bbb\nccc ddd\n");
    }
}
