//! The log file on disk: appending from many processes at once, rotation to one old file,
//! reading both back, and following the file as records arrive.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::Record;

/// 10 MiB: years of connections for one person, and still quick to read whole.
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;

/// Where records go. Cheap to create: every `append` opens the file anew, so a handle never
/// writes to a file another process has rotated away.
#[derive(Debug, Clone)]
pub struct DiagLog {
    path: PathBuf,
    /// Past this size the file is rotated to `PATH.1` before the next record.
    max_bytes: u64,
}

/// Records read from the log, and how many lines were not records (a crash mid-write, a
/// hand edit): those are skipped, not fatal, so one bad line never hides the rest.
#[derive(Debug, Default)]
pub struct Contents {
    pub records: Vec<Record>,
    pub corrupt: usize,
}

impl DiagLog {
    pub fn new(path: impl Into<PathBuf>, max_bytes: u64) -> DiagLog {
        DiagLog {
            path: path.into(),
            max_bytes,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record` as one line.
    ///
    /// Each record is a single `write(2)` on a file opened with O_APPEND, which POSIX makes
    /// land whole at the end of the file even with other O_APPEND writers. That alone would
    /// not make rotation safe: "check the size, then rename" by two processes at once would
    /// move the fresh file over the old one and lose it. So writers also hold an exclusive
    /// `flock` on `PATH.lock` (a file that is never rotated, unlike the log itself) around
    /// the size check, the rename and the write. The lock also covers filesystems where
    /// O_APPEND is not atomic (NFS).
    pub fn append(&self, record: &Record) -> Result<()> {
        let mut line = serde_json::to_vec(record).context("cannot encode a diagnostic record")?;
        line.push(b'\n');
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the directory {}", dir.display()))?;
        }
        let lock_path = lock_path(&self.path);
        // Records name users, hosts and accounts: keep the files to their owner.
        let lock = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .with_context(|| format!("cannot open the lock file {}", lock_path.display()))?;
        lock.lock()
            .with_context(|| format!("cannot lock {}", lock_path.display()))?;
        let size = match fs::metadata(&self.path) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == ErrorKind::NotFound => 0,
            Err(e) => {
                return Err(e).with_context(|| format!("cannot stat {}", self.path.display()))
            }
        };
        if size > 0 && size + line.len() as u64 > self.max_bytes {
            let old = rotated_path(&self.path);
            fs::rename(&self.path, &old).with_context(|| {
                format!("cannot rotate {} to {}", self.path.display(), old.display())
            })?;
        }
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.path)
            .with_context(|| format!("cannot open the diagnostic log {}", self.path.display()))?;
        // One call; on a regular file it only comes back short when the disk is full.
        file.write_all(&line)
            .with_context(|| format!("cannot write to the diagnostic log {}", self.path.display()))
        // `lock` is released when closed here.
    }
}

/// `diagnostics.jsonl` -> `diagnostics.jsonl.1`, the one older file kept.
pub fn rotated_path(path: &Path) -> PathBuf {
    with_suffix(path, ".1")
}

fn lock_path(path: &Path) -> PathBuf {
    with_suffix(path, ".lock")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// All records, oldest first (the rotated file, then the current one); corrupt lines are
/// skipped with a warning. A log that does not exist yet is empty.
pub fn read(path: &Path) -> Result<Vec<Record>> {
    let contents = read_counting(path)?;
    if contents.corrupt > 0 {
        tracing::warn!(
            path = %path.display(),
            skipped = contents.corrupt,
            "skipped lines of the diagnostic log that are not records"
        );
    }
    Ok(contents.records)
}

/// As `read`, also counting the lines that were skipped.
pub fn read_counting(path: &Path) -> Result<Contents> {
    let _shared = SharedLock::take(path)?;
    read_unlocked(path)
}

fn read_unlocked(path: &Path) -> Result<Contents> {
    let mut contents = Contents::default();
    for file in [rotated_path(path), path.to_path_buf()] {
        match fs::read(&file) {
            Ok(bytes) => parse_lines(&bytes, &mut contents),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
        }
    }
    Ok(contents)
}

/// Held while reading, so no writer rotates between reading `PATH.1` and `PATH` (which
/// would show some records twice or not at all).
struct SharedLock {
    /// Closing it releases the lock.
    _file: Option<File>,
}

impl SharedLock {
    fn take(path: &Path) -> Result<SharedLock> {
        let lock_path = lock_path(path);
        // Read-only: reading the log must work without write access, and must not create
        // files. No lock file means no writer has run yet.
        match File::open(&lock_path) {
            Ok(file) => {
                file.lock_shared()
                    .with_context(|| format!("cannot lock {}", lock_path.display()))?;
                Ok(SharedLock { _file: Some(file) })
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(SharedLock { _file: None }),
            Err(e) => Err(e).with_context(|| format!("cannot open {}", lock_path.display())),
        }
    }
}

/// Complete lines of `bytes` become records; blank lines are ignored, others counted.
fn parse_lines(bytes: &[u8], contents: &mut Contents) {
    for line in bytes.split(|&b| b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice(line) {
            Ok(record) => contents.records.push(record),
            Err(_) => contents.corrupt += 1,
        }
    }
}

/// Reads records as they are appended (`log --follow`), across rotations.
pub struct Follower {
    path: PathBuf,
    /// The file being read, kept open: after a rotation it still reads the old file (now
    /// `PATH.1`), so records written just before the rename are not missed.
    file: Option<File>,
    /// Bytes after the last newline: a record whose write we read half of.
    partial: Vec<u8>,
}

impl Follower {
    /// The log as it is now, and a follower that returns only what is appended after it;
    /// both under the lock, so no record falls between the two.
    pub fn start(path: &Path) -> Result<(Contents, Follower)> {
        let _shared = SharedLock::take(path)?;
        let contents = read_unlocked(path)?;
        let file = match File::open(path) {
            Ok(mut file) => {
                file.seek(SeekFrom::End(0))
                    .with_context(|| format!("cannot read {}", path.display()))?;
                Some(file)
            }
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
        };
        let follower = Follower {
            path: path.to_path_buf(),
            file,
            partial: Vec::new(),
        };
        Ok((contents, follower))
    }

    /// The records appended since the last call (or since `start`).
    pub fn poll(&mut self) -> Result<Contents> {
        let mut contents = Contents::default();
        self.read_more(&mut contents)?;
        let current = match fs::metadata(&self.path) {
            Ok(meta) => Some((meta.dev(), meta.ino())),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => {
                return Err(e).with_context(|| format!("cannot stat {}", self.path.display()))
            }
        };
        let ours = match &self.file {
            Some(file) => Some(file.metadata().map(|m| (m.dev(), m.ino()))?),
            None => None,
        };
        if current.is_some() && current != ours {
            // Rotated (or created). Nothing writes to the old file after the rename, but
            // something may have been written between our read and the rename.
            self.read_more(&mut contents)?;
            if !self.partial.is_empty() {
                contents.corrupt += 1;
                self.partial.clear();
            }
            self.file = Some(
                File::open(&self.path)
                    .with_context(|| format!("cannot open {}", self.path.display()))?,
            );
            self.read_more(&mut contents)?;
        }
        Ok(contents)
    }

    /// Reads our file to its end and parses the complete lines.
    fn read_more(&mut self, contents: &mut Contents) -> Result<()> {
        let Some(file) = &mut self.file else {
            return Ok(());
        };
        file.read_to_end(&mut self.partial)
            .with_context(|| format!("cannot read {}", self.path.display()))?;
        if let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') {
            let rest = self.partial.split_off(end + 1);
            parse_lines(&self.partial, contents);
            self.partial = rest;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diaglog::tests::sample;

    fn numbered(n: u64) -> Record {
        Record {
            duration_ms: n,
            ..sample()
        }
    }

    fn durations(records: &[Record]) -> Vec<u64> {
        records.iter().map(|r| r.duration_ms).collect()
    }

    #[test]
    fn appended_records_read_back_in_order_with_private_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/diagnostics.jsonl");
        let log = DiagLog::new(&path, DEFAULT_MAX_BYTES);
        for n in 0..3 {
            log.append(&numbered(n)).unwrap();
        }
        assert_eq!(durations(&read(&path).unwrap()), [0, 1, 2]);
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3);
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_missing_log_reads_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let contents = read_counting(&dir.path().join("none.jsonl")).unwrap();
        assert!(contents.records.is_empty());
        assert_eq!(contents.corrupt, 0);
    }

    #[test]
    fn corrupt_lines_are_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.jsonl");
        let good = serde_json::to_string(&sample()).unwrap();
        fs::write(
            &path,
            format!("{good}\n{{\"time\": \"trunc\n\n\u{0}\u{1}garbage\n{good}\n{{\"half\": "),
        )
        .unwrap();
        let contents = read_counting(&path).unwrap();
        assert_eq!(contents.records.len(), 2);
        assert_eq!(contents.corrupt, 3);
    }

    #[test]
    fn rotation_keeps_one_old_file_and_never_exceeds_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.jsonl");
        let line_len = serde_json::to_vec(&numbered(10)).unwrap().len() as u64 + 1;
        let log = DiagLog::new(&path, line_len * 4);
        for n in 10..30 {
            log.append(&numbered(n)).unwrap();
            assert!(fs::metadata(&path).unwrap().len() <= line_len * 4);
        }
        // 20 records, 4 per file: the last 8 remain, the newest in the current file.
        assert_eq!(
            durations(&read(&path).unwrap()),
            (22..30).collect::<Vec<_>>()
        );
        let current: Vec<Record> = fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(durations(&current), [26, 27, 28, 29]);
        assert!(!with_suffix(&path, ".2").exists());
    }

    #[test]
    fn a_follower_sees_appends_across_rotations_and_half_written_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.jsonl");
        let line_len = serde_json::to_vec(&numbered(10)).unwrap().len() as u64 + 1;
        let log = DiagLog::new(&path, line_len * 2);
        let (before, mut follower) = Follower::start(&path).unwrap();
        assert!(before.records.is_empty());
        assert!(follower.poll().unwrap().records.is_empty());
        log.append(&numbered(10)).unwrap();
        assert_eq!(durations(&follower.poll().unwrap().records), [10]);
        // Three appends between polls, one of which rotates the file.
        for n in 11..14 {
            log.append(&numbered(n)).unwrap();
        }
        assert_eq!(durations(&follower.poll().unwrap().records), [11, 12, 13]);
        // Half a line now, the rest later.
        let line = serde_json::to_string(&numbered(14)).unwrap();
        let (head, tail) = line.split_at(20);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(head.as_bytes()).unwrap();
        assert!(follower.poll().unwrap().records.is_empty());
        file.write_all(format!("{tail}\n").as_bytes()).unwrap();
        let contents = follower.poll().unwrap();
        assert_eq!(durations(&contents.records), [14]);
        assert_eq!(contents.corrupt, 0);
    }

    #[test]
    fn a_follower_started_before_the_log_exists_picks_it_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.jsonl");
        let (_, mut follower) = Follower::start(&path).unwrap();
        DiagLog::new(&path, DEFAULT_MAX_BYTES)
            .append(&numbered(7))
            .unwrap();
        assert_eq!(durations(&follower.poll().unwrap().records), [7]);
    }
}
