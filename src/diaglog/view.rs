//! What `ec2-ssh-proxy log` shows: which records (`select`) and how a person reads one
//! (`render`). Pure functions over records.

use super::{AttemptRecord, Record};

/// Lines of rendered text stay within this many columns, as a terminal or a ticket shows them.
const WIDTH: usize = 90;
/// Everything under the header line is indented by this much.
const INDENT: &str = "  ";

/// Which records to show; every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only the newest N of the records that match the other conditions.
    pub last: Option<usize>,
    /// The host as typed (ignoring case, as ssh does) or the instance id it resolved to.
    pub host: Option<String>,
    /// A verdict code, exactly.
    pub verdict: Option<String>,
}

impl Filter {
    /// Whether `record` meets the host and verdict conditions (`last` is about a sequence).
    pub fn matches(&self, record: &Record) -> bool {
        let host_ok = self.host.as_deref().is_none_or(|host| {
            record.host.eq_ignore_ascii_case(host) || record.instance_id.as_deref() == Some(host)
        });
        let verdict_ok = self
            .verdict
            .as_deref()
            .is_none_or(|verdict| record.verdict == verdict);
        host_ok && verdict_ok
    }
}

/// The records `filter` asks for, oldest first as in the file.
pub fn select<'a>(records: &'a [Record], filter: &Filter) -> Vec<&'a Record> {
    let mut chosen: Vec<&Record> = records.iter().filter(|r| filter.matches(r)).collect();
    if let Some(last) = filter.last {
        chosen.drain(..chosen.len().saturating_sub(last));
    }
    chosen
}

/// One record for people: a header line, the explanation, the attempts as a table and the
/// fixes numbered. Ends with a newline.
pub fn render(record: &Record) -> String {
    let mut out = header(record);
    out.push('\n');
    if !record.explanation.trim().is_empty() {
        for line in wrap(&record.explanation, WIDTH - INDENT.len()) {
            push_line(&mut out, &format!("{INDENT}{line}"));
        }
    }
    if !record.attempts.is_empty() {
        out.push('\n');
        for line in attempts_table(&record.attempts) {
            push_line(&mut out, &format!("{INDENT}{line}"));
        }
    }
    if !record.fixes.is_empty() {
        out.push('\n');
        push_line(&mut out, &format!("{INDENT}fixes:"));
        for (n, fix) in record.fixes.iter().enumerate() {
            let number = format!("{}. ", n + 1);
            let hang = " ".repeat(number.len());
            let lines = wrap(fix, WIDTH - INDENT.len() - number.len());
            for (i, line) in lines.iter().enumerate() {
                let lead = if i == 0 { &number } else { &hang };
                push_line(&mut out, &format!("{INDENT}{lead}{line}"));
            }
        }
    }
    out
}

/// `2026-11-29 10:00:00Z  ec2-user@web-1 (i-0abc, 222222222222 us-east-1)  verdict: ok  312 ms`
fn header(record: &Record) -> String {
    // "2026-11-29T10:00:00.123Z" to the second; a time in another shape is shown as written.
    let time = match record.time.get(..19) {
        Some(prefix) if record.time.len() > 19 => format!("{}Z", prefix.replacen('T', " ", 1)),
        _ => record.time.clone(),
    };
    let place = [record.account.as_deref(), record.region.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let context = [record.instance_id.clone().unwrap_or_default(), place]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    let context = if context.is_empty() {
        String::new()
    } else {
        format!(" ({context})")
    };
    format!(
        "{time}  {}@{}{context}  verdict: {}  {} ms",
        record.login_user, record.host, record.verdict, record.duration_ms
    )
}

fn attempts_table(attempts: &[AttemptRecord]) -> Vec<String> {
    let mut rows: Vec<[String; 5]> = vec![[
        "key".into(),
        "fingerprint".into(),
        "source".into(),
        "method".into(),
        "result".into(),
    ]];
    rows.extend(attempts.iter().map(|a| {
        [
            a.key_name.clone().unwrap_or_else(|| "-".into()),
            a.fingerprint.clone(),
            a.source.clone(),
            serde_json::to_value(a.method)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            a.result.to_string(),
        ]
    }));
    let width = |col: usize| {
        rows.iter()
            .map(|r| r[col].chars().count())
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2, w3) = (width(0), width(1), width(2), width(3));
    rows.iter()
        .map(|[key, fingerprint, source, method, result]| {
            format!("{key:w0$}  {fingerprint:w1$}  {source:w2$}  {method:w3$}  {result}")
        })
        .collect()
}

fn push_line(out: &mut String, line: &str) {
    out.push_str(line.trim_end());
    out.push('\n');
}

/// Greedy word wrap to `width` columns. Newlines in `text` are kept; a line that starts with
/// whitespace (an indented command) is kept whole, so it can still be copied and run.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.lines() {
        if paragraph.starts_with(char::is_whitespace) || paragraph.is_empty() {
            lines.push(paragraph.to_string());
            continue;
        }
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            let needed = line.chars().count() + 1 + word.chars().count();
            if !line.is_empty() && needed > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diaglog::tests::sample;

    fn record(host: &str, instance: &str, verdict: &str, n: u64) -> Record {
        Record {
            host: host.into(),
            instance_id: Some(instance.into()),
            verdict: verdict.into(),
            duration_ms: n,
            ..sample()
        }
    }

    fn log() -> Vec<Record> {
        vec![
            record("web-1", "i-01", "ok", 0),
            record("web-2", "i-02", "ami-baked-key", 1),
            record("Web-1", "i-01", "ami-baked-key", 2),
            record("db", "i-03", "unreachable", 3),
            record("i-01", "i-01", "ok", 4),
        ]
    }

    fn picked(filter: Filter) -> Vec<u64> {
        select(&log(), &filter)
            .iter()
            .map(|r| r.duration_ms)
            .collect()
    }

    #[test]
    fn select_filters_then_keeps_the_newest_in_file_order() {
        assert_eq!(picked(Filter::default()), [0, 1, 2, 3, 4]);
        let last = |n| Filter {
            last: Some(n),
            ..Filter::default()
        };
        assert_eq!(picked(last(2)), [3, 4]);
        assert_eq!(picked(last(0)), Vec::<u64>::new());
        assert_eq!(picked(last(99)), [0, 1, 2, 3, 4]);
        let host = |h: &str| Filter {
            host: Some(h.into()),
            ..Filter::default()
        };
        // As typed, ignoring case, or by the instance it resolved to.
        assert_eq!(picked(host("web-1")), [0, 2]);
        assert_eq!(picked(host("i-01")), [0, 2, 4]);
        assert_eq!(picked(host("web")), Vec::<u64>::new());
        assert_eq!(
            picked(Filter {
                last: Some(1),
                host: Some("WEB-1".into()),
                verdict: Some("ami-baked-key".into()),
            }),
            [2]
        );
        assert_eq!(
            picked(Filter {
                verdict: Some("ok".into()),
                last: Some(1),
                ..Filter::default()
            }),
            [4]
        );
    }

    #[test]
    fn render_shows_header_explanation_attempts_and_fixes() {
        let mut r = sample();
        r.explanation =
            "Key pair 'new-key' (SHA256:newnewnew) was refused by i-0abc. The instance was \
            launched from ami-0123, which account 111111111111 made from an instance launched with \
            'old-key'; its authorized_keys still holds only that key."
                .into();
        r.fixes = vec![
            "Keep using old-key: the proxy does so.".into(),
            "Import old-key's public key into this account with the original name:\n    aws ec2 import-key-pair --key-name old-key --public-key-material fileb://~/.ssh/old-key.pub --region us-east-1".into(),
        ];
        let expected = "\
2026-11-29 10:00:00Z  ec2-user@web-1 (i-0abc, 222222222222 us-east-1)  verdict: ami-baked-key  312 ms
  Key pair 'new-key' (SHA256:newnewnew) was refused by i-0abc. The instance was launched
  from ami-0123, which account 111111111111 made from an instance launched with 'old-key';
  its authorized_keys still holds only that key.

  key      fingerprint       source              method     result
  new-key  SHA256:newnewnew  ~/.ssh/new-key.pem  signature  refused
  old-key  SHA256:oldoldold  ~/.ssh/old-key.pem  query      accepted

  fixes:
  1. Keep using old-key: the proxy does so.
  2. Import old-key's public key into this account with the original name:
         aws ec2 import-key-pair --key-name old-key --public-key-material fileb://~/.ssh/old-key.pub --region us-east-1
";
        assert_eq!(render(&r), expected);
        // The header is one line however long; commands are kept whole to stay copyable.
        for line in render(&r)
            .lines()
            .skip(1)
            .filter(|l| !l.contains("aws ec2"))
        {
            assert!(line.chars().count() <= WIDTH, "{line}");
        }
    }

    #[test]
    fn render_of_a_bare_record_is_its_header() {
        let r = Record {
            instance_id: None,
            account: None,
            region: None,
            attempts: vec![],
            explanation: String::new(),
            fixes: vec![],
            verdict: "unknown-host".into(),
            time: "yesterday".into(),
            ..sample()
        };
        assert_eq!(
            render(&r),
            "yesterday  ec2-user@web-1  verdict: unknown-host  312 ms\n"
        );
    }

    #[test]
    fn wrap_breaks_at_spaces_and_keeps_long_words_and_indented_lines() {
        assert_eq!(wrap("aa bb cc", 5), ["aa bb", "cc"]);
        assert_eq!(wrap("abcdefgh ij", 4), ["abcdefgh", "ij"]);
        assert_eq!(wrap("one\n\n  two  three", 3), ["one", "", "  two  three"]);
    }
}
