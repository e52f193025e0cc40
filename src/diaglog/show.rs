//! `ec2-ssh-proxy log`: the selected records on stdout, rendered or as JSON lines, and with
//! `--follow` the new ones as they are appended.

use std::io::{ErrorKind, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use super::{render, rotated_path, select, Contents, Filter, Follower, Record};

/// How often `--follow` looks for new records: quick enough to feel live, rare enough to
/// cost nothing.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Default)]
pub struct ShowOptions {
    pub filter: Filter,
    /// JSON lines (one record each) instead of text for people.
    pub json: bool,
    /// Keep printing records as they arrive, until killed.
    pub follow: bool,
}

/// Prints the log at `path` on stdout; notes for people (nothing recorded yet, skipped lines)
/// go to stdout with rendered output and to stderr with `--json`, which keeps stdout
/// parseable. A closed stdout (`log | head`) ends the command quietly.
pub fn show(path: &Path, options: &ShowOptions) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match write_log(path, options, &mut out, POLL_INTERVAL) {
        Err(e) if is_broken_pipe(&e) => Ok(()),
        other => other,
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == ErrorKind::BrokenPipe)
}

fn write_log(
    path: &Path,
    options: &ShowOptions,
    out: &mut dyn Write,
    interval: Duration,
) -> Result<()> {
    let (contents, mut follower) = Follower::start(path)?;
    let mut shown = 0;
    if !path.exists() && !rotated_path(path).exists() {
        note(
            options,
            out,
            &format!("no diagnostic records yet ({})", path.display()),
        )?;
    } else {
        let chosen = select(&contents.records, &options.filter);
        if chosen.is_empty() && !options.follow {
            note(
                options,
                out,
                &format!(
                    "no records match ({} records in {})",
                    contents.records.len(),
                    path.display()
                ),
            )?;
        }
        for record in chosen {
            write_record(options, out, record, &mut shown)?;
        }
        report_corrupt(options, out, &contents, path)?;
    }
    out.flush()?;
    if !options.follow {
        return Ok(());
    }
    loop {
        std::thread::sleep(interval);
        let contents = follower.poll()?;
        for record in contents
            .records
            .iter()
            .filter(|r| options.filter.matches(r))
        {
            write_record(options, out, record, &mut shown)?;
        }
        report_corrupt(options, out, &contents, path)?;
        out.flush()?;
    }
}

fn write_record(
    options: &ShowOptions,
    out: &mut dyn Write,
    record: &Record,
    shown: &mut usize,
) -> Result<()> {
    if options.json {
        let line = serde_json::to_string(record).context("cannot encode a record")?;
        writeln!(out, "{line}")?;
    } else {
        // A blank line between records: each is several lines long.
        if *shown > 0 {
            writeln!(out)?;
        }
        write!(out, "{}", render(record))?;
    }
    *shown += 1;
    Ok(())
}

fn report_corrupt(
    options: &ShowOptions,
    out: &mut dyn Write,
    contents: &Contents,
    path: &Path,
) -> Result<()> {
    if contents.corrupt == 0 {
        return Ok(());
    }
    note(
        options,
        out,
        &format!(
            "skipped {} line(s) of {} that are not diagnostic records",
            contents.corrupt,
            path.display()
        ),
    )
}

fn note(options: &ShowOptions, out: &mut dyn Write, text: &str) -> Result<()> {
    if options.json {
        eprintln!("ec2-ssh-proxy: {text}");
    } else {
        writeln!(out, "{text}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diaglog::tests::sample;
    use crate::diaglog::DiagLog;

    fn shown(path: &Path, options: &ShowOptions) -> String {
        let mut out = Vec::new();
        write_log(path, options, &mut out, Duration::ZERO).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn records_are_separated_by_a_blank_line_and_filtered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.jsonl");
        let log = DiagLog::new(&path, u64::MAX);
        let ok = Record {
            verdict: "ok".into(),
            ..sample()
        };
        log.append(&sample()).unwrap();
        log.append(&ok).unwrap();
        let all = shown(&path, &ShowOptions::default());
        assert_eq!(all, format!("{}\n{}", render(&sample()), render(&ok)));
        let only_ok = ShowOptions {
            filter: Filter {
                verdict: Some("ok".into()),
                ..Filter::default()
            },
            ..ShowOptions::default()
        };
        assert_eq!(shown(&path, &only_ok), render(&ok));
        let none = ShowOptions {
            filter: Filter {
                verdict: Some("wrong-user".into()),
                ..Filter::default()
            },
            ..ShowOptions::default()
        };
        assert_eq!(
            shown(&path, &none),
            format!("no records match (2 records in {})\n", path.display())
        );
    }

    #[test]
    fn a_missing_log_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.jsonl");
        assert_eq!(
            shown(&path, &ShowOptions::default()),
            format!("no diagnostic records yet ({})\n", path.display())
        );
    }
}
