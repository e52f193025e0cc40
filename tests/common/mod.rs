//! End-to-end test harness: a real OpenSSH `sshd` plays the EC2 instance, the proxy runs as a
//! child process (`serve` daemon and/or `connect` ProxyCommand), and OpenSSH `ssh`/`scp`/`sftp`
//! play the user. Everything listens on 127.0.0.1 and lives in a per-test temp dir.
//!
//! Every child process is bounded in time (a hang fails the test instead of hanging CI) and
//! killed on Drop. Failure messages carry the proxy's stderr and the sshd log.
#![allow(dead_code)]

pub mod moto;
pub mod seed;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub const SSHD: &str = "/usr/sbin/sshd";
const INSTALL_HINT: &str = "install openssh-server (apt-get install -y openssh-server)";

/// The proxy binary under test. `EC2_SSH_PROXY_TEST_BIN` overrides it (useful to check the
/// harness itself against a stand-in).
pub fn proxy_bin() -> PathBuf {
    match std::env::var_os("EC2_SSH_PROXY_TEST_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_ec2-ssh-proxy")),
    }
}

/// Panics (never skips) when the OpenSSH tools the tests need are missing.
pub fn require_openssh() {
    if !Path::new(SSHD).exists() {
        panic!("{SSHD} not found: {INSTALL_HINT}");
    }
    for tool in ["ssh", "scp", "sftp", "ssh-keygen", "ssh-agent", "ssh-add"] {
        let found = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !found {
            panic!("`{tool}` not found on PATH: {INSTALL_HINT} (and openssh-client)");
        }
    }
}

/// A port that was free a moment ago (bind 127.0.0.1:0, read, drop).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// A port where connections are refused, reserved for as long as this lives: a socket
/// bound to it that never listens. (A port merely free a moment ago can be taken by the
/// next server a test starts, which then answers in its place.)
pub struct ClosedPort {
    fd: std::os::fd::OwnedFd,
    pub port: u16,
}

impl ClosedPort {
    pub fn new() -> ClosedPort {
        use std::os::fd::{AsRawFd, FromRawFd};
        // SAFETY: plain socket calls on a descriptor this function creates and owns.
        unsafe {
            let raw = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(raw >= 0, "socket: {}", std::io::Error::last_os_error());
            let fd = std::os::fd::OwnedFd::from_raw_fd(raw);
            let mut addr: libc::sockaddr_in = std::mem::zeroed();
            addr.sin_family = libc::AF_INET as libc::sa_family_t;
            addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
            let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            let bound = libc::bind(
                fd.as_raw_fd(),
                &addr as *const _ as *const libc::sockaddr,
                len,
            );
            assert_eq!(bound, 0, "bind: {}", std::io::Error::last_os_error());
            let mut got_len = len;
            let named = libc::getsockname(
                fd.as_raw_fd(),
                &mut addr as *mut _ as *mut libc::sockaddr,
                &mut got_len,
            );
            assert_eq!(named, 0, "getsockname: {}", std::io::Error::last_os_error());
            ClosedPort {
                port: u16::from_be(addr.sin_port),
                fd,
            }
        }
    }
}

impl Default for ClosedPort {
    fn default() -> Self {
        ClosedPort::new()
    }
}

impl std::fmt::Debug for ClosedPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::os::fd::AsRawFd;
        write!(f, "ClosedPort({} on fd {})", self.port, self.fd.as_raw_fd())
    }
}

/// The user the tests log in as upstream. As root: `ec2-user`, as on Amazon Linux, and
/// because root's own shell startup here (pyenv in ~/.bashrc, run by sshd for every
/// command) takes a lock that concurrent sessions wait on for a minute. As anyone else:
/// themselves (an sshd run as non-root only lets its own user in).
pub fn login_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("run id -un");
    let me = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if me != "root" {
        return me;
    }
    let known = Command::new("id")
        .arg("ec2-user")
        .output()
        .is_ok_and(|o| o.status.success());
    if !known {
        panic!(
            "the tests log in as ec2-user, which does not exist; scripts/test.sh creates it \
             (useradd -m ec2-user && usermod -p '*' ec2-user)"
        );
    }
    "ec2-user".to_string()
}

fn run_checked(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e} ({INSTALL_HINT})"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed: {}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// `ssh-keygen -t ed25519 -N '' -f path`; returns the public key line.
pub fn keygen(path: &Path, comment: &str) -> String {
    let _ = fs::remove_file(path);
    let _ = fs::remove_file(path.with_extension("pub"));
    run_checked(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
            .arg(path),
    );
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
    fs::read_to_string(pub_path(path))
        .unwrap()
        .trim()
        .to_string()
}

pub fn pub_path(private: &Path) -> PathBuf {
    let mut s = private.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// `SHA256:...` fingerprint of a public (or private) key file.
pub fn fingerprint(key_file: &Path) -> String {
    let out = run_checked(Command::new("ssh-keygen").arg("-lf").arg(key_file));
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find(|w| w.starts_with("SHA256:"))
        .unwrap_or_else(|| panic!("no SHA256 fingerprint in {text:?}"))
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// Process helpers
// ---------------------------------------------------------------------------------------------

/// pid -> parent pid for every process, from /proc.
fn ppid_map() -> HashMap<u32, u32> {
    let mut map = HashMap::new();
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // "pid (comm) state ppid ..." ; comm may contain spaces/parens: split after last ')'
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                continue;
            };
            let mut it = rest.split_whitespace();
            let _state = it.next();
            if let Some(ppid) = it.next().and_then(|p| p.parse().ok()) {
                map.insert(pid, ppid);
            }
        }
    }
    map
}

/// All descendants of `root` (not including it), children before grandchildren.
pub fn descendants(root: u32) -> Vec<u32> {
    let map = ppid_map();
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (&c, &pp) in &map {
            if pp == p && !out.contains(&c) {
                out.push(c);
                frontier.push(c);
            }
        }
    }
    out
}

pub fn comm(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

pub fn cmdline(pid: u32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

pub fn kill(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

fn kill_tree(child: &mut Child) {
    for p in descendants(child.id()) {
        kill(p, "KILL");
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn wait_for_file_text(path: &Path, needle: &str, timeout: Duration, child: &mut Child) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if fs::read_to_string(path)
            .map(|t| t.contains(needle))
            .unwrap_or(false)
        {
            return true;
        }
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        thread::sleep(Duration::from_millis(25));
    }
    false
}

/// The tail of captured stdout for failure messages; binary data is summarized, not dumped.
pub fn printable_tail(bytes: &[u8], max: usize) -> String {
    let start = bytes.len().saturating_sub(max);
    let t = &bytes[start..];
    let binary = t
        .iter()
        .filter(|&&b| b < 0x09 || (b > 0x0d && b < 0x20) || b == 0x7f)
        .count();
    if binary > t.len() / 50 || std::str::from_utf8(t).is_err() && binary > 0 {
        return format!("(binary data, last {} bytes not shown)", t.len());
    }
    tail(&String::from_utf8_lossy(t), max)
}

/// Last `max` bytes of a text, for failure messages.
pub fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &text[start..])
}

// ---------------------------------------------------------------------------------------------
// sshd: the "instance"
// ---------------------------------------------------------------------------------------------

pub struct Sshd {
    pub dir: tempfile::TempDir,
    /// The loopback address it listens on (127.0.0.1 unless an "instance" needs its own).
    pub ip: String,
    pub port: u16,
    pub host_key: PathBuf,
    pub authorized_keys: PathBuf,
    pub config: PathBuf,
    pub log_path: PathBuf,
    /// sshd_config lines placed before the defaults (sshd keeps the first value it reads).
    extra_config: String,
    child: Option<Child>,
}

impl Sshd {
    /// Starts sshd on a free port, authorizing `authorized_pubkeys` (lines) for every user.
    pub fn start(authorized_pubkeys: &[String]) -> Sshd {
        Sshd::start_on("127.0.0.1", authorized_pubkeys)
    }

    /// Like `start`, listening on `ip` (any 127.0.0.0/8 address: an EC2 instance's address
    /// in the moto world).
    pub fn start_on(ip: &str, authorized_pubkeys: &[String]) -> Sshd {
        Sshd::start_with(ip, authorized_pubkeys, "")
    }

    /// Like `start_on`, with `extra_config` lines before the defaults (e.g. `LogLevel DEBUG1`).
    pub fn start_with(ip: &str, authorized_pubkeys: &[String], extra_config: &str) -> Sshd {
        require_openssh();
        let dir = tempfile::Builder::new().prefix("sshd-").tempdir().unwrap();
        let host_key = dir.path().join("host_key");
        keygen(&host_key, "test-sshd-host");
        let authorized_keys = dir.path().join("authorized_keys");
        fs::write(&authorized_keys, authorized_pubkeys.join("\n") + "\n").unwrap();
        fs::set_permissions(&authorized_keys, fs::Permissions::from_mode(0o644)).unwrap();
        // The login user (see login_user) writes uploads here.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let mut sshd = Sshd {
            ip: ip.to_string(),
            port: free_port(),
            config: dir.path().join("sshd_config"),
            log_path: dir.path().join("sshd.log"),
            host_key,
            authorized_keys,
            dir,
            extra_config: extra_config.to_string(),
            child: None,
        };
        sshd.write_config();
        sshd.spawn();
        sshd
    }

    fn write_config(&self) {
        let d = self.dir.path().display();
        let cfg = format!(
            "{extra}\
             ListenAddress {ip}\n\
             Port {port}\n\
             HostKey {hk}\n\
             PidFile none\n\
             AuthorizedKeysFile {ak}\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             UsePAM no\n\
             StrictModes no\n\
             LogLevel VERBOSE\n\
             AllowAgentForwarding yes\n\
             AllowTcpForwarding yes\n\
             PermitRootLogin prohibit-password\n\
             Subsystem sftp internal-sftp\n\
             AcceptEnv LANG LC_* TEST_*\n\
             MaxStartups 100:30:200\n\
             MaxSessions 64\n\
             ClientAliveInterval 0\n\
             # data dir for tests: {d}\n",
            extra = self.extra_config,
            ip = self.ip,
            port = self.port,
            hk = self.host_key.display(),
            ak = self.authorized_keys.display(),
        );
        fs::write(&self.config, cfg).unwrap();
    }

    fn spawn(&mut self) {
        fs::create_dir_all("/run/sshd").ok();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .unwrap();
        let start_len = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {SSHD}: {e}: {INSTALL_HINT}"));
        // Wait for "Server listening on" written after this start.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = fs::read(&self.log_path).unwrap_or_default();
            let new =
                String::from_utf8_lossy(&text[(start_len as usize).min(text.len())..]).to_string();
            if new.contains("Server listening on") {
                break;
            }
            if let Ok(Some(st)) = child.try_wait() {
                panic!("sshd exited ({st}) before listening; log:\n{new}");
            }
            if Instant::now() > deadline {
                kill_tree(&mut child);
                panic!("sshd not listening after 20 s; log:\n{new}");
            }
            thread::sleep(Duration::from_millis(25));
        }
        self.child = Some(child);
    }

    pub fn addr(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("sshd running").id()
    }

    pub fn log(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.log_path).unwrap_or_default()).to_string()
    }

    pub fn host_key_fingerprint(&self) -> String {
        fingerprint(&pub_path(&self.host_key))
    }

    /// Stops the listener and every session process.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_tree(&mut c);
        }
    }

    /// Restarts on the same port with a freshly generated host key.
    pub fn restart_with_new_host_key(&mut self) {
        self.stop();
        keygen(&self.host_key, "test-sshd-host-new");
        self.spawn();
    }

    /// Per-connection sshd processes (children of the listener) and everything under them.
    pub fn session_pids(&self) -> Vec<u32> {
        descendants(self.pid())
    }

    /// SIGKILLs every per-connection process (the listener survives): the upstream connection
    /// drops mid-session, as when an instance dies.
    pub fn kill_sessions(&self) {
        for p in self.session_pids() {
            kill(p, "KILL");
        }
    }

    /// Waits until a process whose command line contains `needle` runs under this sshd.
    pub fn wait_for_session_process(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self
                .session_pids()
                .iter()
                .any(|&p| cmdline(p).contains(needle))
            {
                return true;
            }
            thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// The proxy (serve daemon; config; CA line)
// ---------------------------------------------------------------------------------------------

pub struct Proxy {
    pub config: PathBuf,
    pub state_dir: PathBuf,
    pub port: u16,
    pub ca_line: String,
    log: Arc<Mutex<String>>,
    pub log_path: PathBuf,
    child: Option<Child>,
}

impl Proxy {
    /// Global flags every subcommand gets.
    pub fn base_args(&self) -> Vec<String> {
        vec![
            "--config".into(),
            self.config.display().to_string(),
            "--state-dir".into(),
            self.state_dir.display().to_string(),
        ]
    }

    /// The ProxyCommand string for ssh (`%h %p` left for ssh to expand).
    pub fn proxy_command(&self) -> String {
        format!(
            "{} --config {} --state-dir {} connect %h %p",
            proxy_bin().display(),
            self.config.display(),
            self.state_dir.display()
        )
    }

    /// Everything `serve` has written to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Runs a proxy subcommand to completion (bounded), returning (status, stdout, stderr).
    pub fn run_subcommand(&self, args: &[&str]) -> (ExitStatus, String, String) {
        let mut cmd = Command::new(proxy_bin());
        cmd.args(self.base_args()).args(args);
        let out = Cmd::from_command(cmd, String::new()).timeout(30).run();
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).to_string(),
            out.stderr,
        )
    }

    fn start_serve(
        config: PathBuf,
        state_dir: PathBuf,
        log_path: PathBuf,
        env: &[(String, String)],
    ) -> Proxy {
        let mut child = Command::new(proxy_bin())
            // Hermetic: the proxy sees an agent only when a test hands it one.
            .env_remove("SSH_AUTH_SOCK")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .arg("--config")
            .arg(&config)
            .arg("--state-dir")
            .arg(&state_dir)
            .arg("-v")
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", proxy_bin().display()));
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel::<u16>();
        {
            let log = log.clone();
            let log_path = log_path.clone();
            thread::spawn(move || {
                let mut file = fs::File::create(&log_path).ok();
                let mut reader = BufReader::new(stderr);
                let mut line = Vec::new();
                let mut sent = false;
                loop {
                    line.clear();
                    match reader.read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    let text = String::from_utf8_lossy(&line).to_string();
                    if let Some(f) = file.as_mut() {
                        let _ = f.write_all(text.as_bytes());
                    }
                    if !sent {
                        if let Some(rest) =
                            text.trim_end().strip_prefix("ec2-ssh-proxy: listening on ")
                        {
                            if let Some(port) =
                                rest.rsplit(':').next().and_then(|p| p.trim().parse().ok())
                            {
                                let _ = tx.send(port);
                                sent = true;
                            }
                        }
                    }
                    let mut l = log.lock().unwrap();
                    l.push_str(&text);
                    // keep memory bounded: only the last 4 MiB
                    if l.len() > 8 << 20 {
                        let t = tail(&l, 4 << 20);
                        *l = t;
                    }
                }
            });
        }
        let port = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(p) => p,
            Err(_) => {
                let status = child.try_wait().ok().flatten();
                kill_tree(&mut child);
                thread::sleep(Duration::from_millis(100));
                panic!(
                    "`ec2-ssh-proxy serve` did not print `ec2-ssh-proxy: listening on 127.0.0.1:PORT` \
                     within 20 s (exit: {status:?}); stderr:\n{}",
                    tail(&log.lock().unwrap(), 8000)
                );
            }
        };
        Proxy {
            config,
            state_dir,
            port,
            ca_line: String::new(),
            log,
            log_path,
            child: Some(child),
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// VmRSS of the serve process in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_tree(&mut c);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// World: one sshd + one proxy + client files, per test
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `ssh -J user@127.0.0.1:PROXYPORT user@web-1` through `serve`.
    Jump,
    /// `ssh -o ProxyCommand='ec2-ssh-proxy ... connect %h %p' user@web-1`.
    ProxyCommand,
}

pub const HOST: &str = "web-1";

pub struct WorldBuilder {
    extra_hosts: Vec<(String, String)>,
    /// Top-level config keys written before the [[hosts]] tables.
    extra_toml: String,
    /// Where the sshd listens (default 127.0.0.1).
    sshd_ip: Option<String>,
    /// sshd_config lines that win over the fixture's defaults.
    sshd_config: String,
    /// Environment for every proxy process (serve, and connect through ssh).
    env: Vec<(String, String)>,
    /// Extra private keys for the proxy's keyring: (file name, source path).
    keyring: Vec<(String, PathBuf)>,
    /// Replaces the sshd's authorized keys (default: the keyring's upstream key only).
    authorized: Option<Vec<String>>,
}

impl WorldBuilder {
    /// Copies a private key into the proxy's keyring under `name` (e.g. `old-key.pem`).
    pub fn keyring_key(mut self, name: &str, private: &Path) -> Self {
        self.keyring.push((name.to_string(), private.to_path_buf()));
        self
    }

    /// The sshd accepts exactly these public key lines (the "instance's" authorized_keys).
    pub fn authorized(mut self, lines: &[String]) -> Self {
        self.authorized = Some(lines.to_vec());
        self
    }

    /// Adds a `[[hosts]]` entry (match, dial). `web-1` -> the sshd is always there.
    pub fn host(mut self, name: &str, dial: &str) -> Self {
        self.extra_hosts.push((name.to_string(), dial.to_string()));
        self
    }

    /// Adds top-level config lines (e.g. `inventory = "file:..."`). Without them the relay
    /// tests run with `inventory = "none"`: no EC2 API, only [[hosts]].
    pub fn config(mut self, toml: &str) -> Self {
        self.extra_toml.push_str(toml);
        self.extra_toml.push('\n');
        self
    }

    pub fn sshd_on(mut self, ip: &str) -> Self {
        self.sshd_ip = Some(ip.to_string());
        self
    }

    /// sshd_config lines (each ending in a newline) that win over the fixture's defaults.
    pub fn sshd_config(mut self, lines: &str) -> Self {
        self.sshd_config.push_str(lines);
        self
    }

    pub fn env(mut self, vars: &[(String, String)]) -> Self {
        self.env.extend(vars.iter().cloned());
        self
    }

    pub fn start(self) -> World {
        require_openssh();
        let tmp = tempfile::Builder::new().prefix("ec2sp-").tempdir().unwrap();
        let t = tmp.path().to_path_buf();
        // The login user (not the test's user) reads and writes transfer files here.
        fs::set_permissions(&t, fs::Permissions::from_mode(0o777)).unwrap();

        // The user's key (allowed by the jump host) and the proxy's upstream key (keyring).
        let client_key = t.join("client_key");
        keygen(&client_key, "test-client");
        let keyring = t.join("keyring");
        fs::create_dir(&keyring).unwrap();
        fs::set_permissions(&keyring, fs::Permissions::from_mode(0o700)).unwrap();
        let upstream_gen = t.join("upstream_key");
        let upstream_pub = keygen(&upstream_gen, "test-upstream");
        let upstream_key = keyring.join("upstream_key");
        fs::copy(&upstream_gen, &upstream_key).unwrap();
        fs::set_permissions(&upstream_key, fs::Permissions::from_mode(0o600)).unwrap();
        // A key nobody trusts.
        let stranger_key = t.join("stranger_key");
        keygen(&stranger_key, "test-stranger");

        for (name, source) in &self.keyring {
            let dest = keyring.join(name);
            fs::copy(source, &dest).unwrap();
            fs::set_permissions(&dest, fs::Permissions::from_mode(0o600)).unwrap();
        }
        let authorized = self
            .authorized
            .clone()
            .unwrap_or_else(|| vec![upstream_pub]);
        let sshd = Sshd::start_with(
            self.sshd_ip.as_deref().unwrap_or("127.0.0.1"),
            &authorized,
            &self.sshd_config,
        );

        let state_dir = t.join("state");
        fs::create_dir(&state_dir).unwrap();
        fs::set_permissions(&state_dir, fs::Permissions::from_mode(0o700)).unwrap();
        let config = t.join("proxy.toml");
        let mut toml = format!(
            "listen = \"127.0.0.1:0\"\n\
             client_keys = [\"{}\"]\n\
             keyring = [\"{}\"]\n\
             ca_patterns = \"*\"\n\
             {extra}\n\
             [[hosts]]\n\
             match = \"{HOST}\"\n\
             dial = \"{}\"\n",
            pub_path(&client_key).display(),
            keyring.display(),
            sshd.addr(),
            extra = if self.extra_toml.is_empty() {
                "inventory = \"none\"\n"
            } else {
                &self.extra_toml
            },
        );
        for (m, d) in &self.extra_hosts {
            let _ = write!(toml, "\n[[hosts]]\nmatch = \"{m}\"\ndial = \"{d}\"\n");
        }
        fs::write(&config, toml).unwrap();

        let mut proxy = Proxy::start_serve(config, state_dir, t.join("proxy-serve.log"), &self.env);
        let (st, stdout, stderr) = proxy.run_subcommand(&["ca"]);
        let ca_line = stdout
            .lines()
            .find(|l| l.starts_with("@cert-authority"))
            .map(str::to_string);
        let ca_line = match (st.success(), ca_line) {
            (true, Some(l)) => l,
            _ => panic!(
                "`ec2-ssh-proxy ca` must print `@cert-authority PATTERNS ssh-ed25519 AAAA...` and \
                 exit 0; got {st}\nstdout: {stdout}\nstderr: {stderr}"
            ),
        };
        proxy.ca_line = ca_line.clone();
        let known_hosts = t.join("known_hosts");
        fs::write(&known_hosts, format!("{ca_line}\n")).unwrap();

        let world = World {
            env: self.env.clone(),
            user: login_user(),
            ssh_config: t.join("ssh_config"),
            ssh_config_info: t.join("ssh_config_info"),
            known_hosts,
            client_key,
            upstream_key,
            stranger_key,
            sshd,
            proxy,
            tmp,
        };
        world.write_ssh_config(&world.ssh_config, &world.client_key, "ERROR");
        world.write_ssh_config(&world.ssh_config_info, &world.client_key, "INFO");
        world
    }
}

pub struct World {
    pub user: String,
    /// Environment for proxy processes (see WorldBuilder::env).
    pub env: Vec<(String, String)>,
    /// LogLevel ERROR: stderr holds only what the remote side wrote (plus real errors).
    pub ssh_config: PathBuf,
    /// LogLevel INFO: shows "Received disconnect from ...: <text>" (the proxy's explanations).
    pub ssh_config_info: PathBuf,
    pub known_hosts: PathBuf,
    pub client_key: PathBuf,
    /// The private key in the proxy's keyring; its public half is the sshd's only authorized key.
    pub upstream_key: PathBuf,
    pub stranger_key: PathBuf,
    // Drop order: proxy before sshd, tmp last.
    pub proxy: Proxy,
    pub sshd: Sshd,
    pub tmp: tempfile::TempDir,
}

impl World {
    pub fn builder() -> WorldBuilder {
        WorldBuilder {
            extra_hosts: Vec::new(),
            extra_toml: String::new(),
            sshd_ip: None,
            sshd_config: String::new(),
            env: Vec::new(),
            keyring: Vec::new(),
            authorized: None,
        }
    }

    /// sshd as `web-1`, the proxy serving it, client files ready.
    pub fn start() -> World {
        Self::builder().start()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Writes an ssh_config with every option under `Host *` (ssh -J passes only -F on to the
    /// jump hop's ssh).
    pub fn write_ssh_config(&self, path: &Path, identity: &Path, log_level: &str) {
        let cfg = format!(
            "Host *\n\
             \x20 UserKnownHostsFile {kh}\n\
             \x20 GlobalKnownHostsFile /dev/null\n\
             \x20 StrictHostKeyChecking yes\n\
             \x20 IdentityFile {id}\n\
             \x20 IdentitiesOnly yes\n\
             \x20 BatchMode yes\n\
             \x20 ConnectTimeout 5\n\
             \x20 ServerAliveInterval 0\n\
             \x20 ControlMaster no\n\
             \x20 ControlPath none\n\
             \x20 UpdateHostKeys no\n\
             \x20 LogLevel {log_level}\n",
            kh = self.known_hosts.display(),
            id = identity.display(),
        );
        fs::write(path, cfg).unwrap();
    }

    /// user@web-1
    pub fn dest(&self) -> String {
        self.dest_for(HOST)
    }

    pub fn dest_for(&self, host: &str) -> String {
        format!("{}@{}", self.user, host)
    }

    pub fn jump_spec(&self) -> String {
        format!("{}@127.0.0.1:{}", self.user, self.proxy.port)
    }

    fn mode_args(&self, mode: Mode) -> Vec<String> {
        match mode {
            Mode::Jump => vec!["-J".into(), self.jump_spec()],
            Mode::ProxyCommand => vec![
                "-o".into(),
                format!("ProxyCommand={}", self.proxy.proxy_command()),
            ],
        }
    }

    /// Text appended to every failure message.
    pub fn diagnostics(&self) -> String {
        format!(
            "\n--- proxy serve stderr (tail) ---\n{}\n--- sshd log (tail) ---\n{}",
            tail(&self.proxy.log(), 6000),
            tail(&self.sshd.log(), 4000)
        )
    }

    fn tool(&self, program: &str, mode: Mode, config: &Path) -> Cmd {
        let mut c = Command::new(program);
        c.arg("-F").arg(config).args(self.mode_args(mode));
        // Keep the user's environment out of it.
        c.env_remove("SSH_AUTH_SOCK");
        // ssh hands its environment to the ProxyCommand.
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        Cmd::from_command(c, self.diagnostics_lazy())
    }

    fn diagnostics_lazy(&self) -> String {
        // Captured when the command finishes; see Cmd::run (re-read from files there).
        format!(
            "{}\u{0}{}",
            self.proxy.log_path.display(),
            self.sshd.log_path.display()
        )
    }

    /// `ssh -F cfg (-J ...|-o ProxyCommand=...)`; add options, then `dest()` and the command.
    pub fn ssh(&self, mode: Mode) -> Cmd {
        self.tool("ssh", mode, &self.ssh_config)
    }

    /// Like `ssh` but LogLevel INFO, so the proxy's disconnect text is printed.
    pub fn ssh_info(&self, mode: Mode) -> Cmd {
        self.tool("ssh", mode, &self.ssh_config_info)
    }

    /// ssh with an explicit config file (e.g. one naming a different IdentityFile).
    pub fn ssh_with_config(&self, mode: Mode, config: &Path) -> Cmd {
        self.tool("ssh", mode, config)
    }

    /// ssh with no jump/ProxyCommand options (e.g. `-W host:port -p PROXYPORT user@127.0.0.1`
    /// straight at the jump server).
    pub fn ssh_no_mode(&self, config: &Path) -> Cmd {
        let mut c = Command::new("ssh");
        c.arg("-F").arg(config);
        c.env_remove("SSH_AUTH_SOCK");
        Cmd::from_command(c, self.diagnostics_lazy())
    }

    pub fn scp(&self, mode: Mode) -> Cmd {
        self.tool("scp", mode, &self.ssh_config)
    }

    pub fn sftp(&self, mode: Mode) -> Cmd {
        self.tool("sftp", mode, &self.ssh_config)
    }

    /// Plain OpenSSH straight to the sshd with the upstream key (no proxy): the reference
    /// behaviour to compare against.
    pub fn direct_ssh(&self) -> Cmd {
        let mut c = plain_ssh(&self.sshd, &self.upstream_key, &self.user);
        c.env_remove("SSH_AUTH_SOCK");
        Cmd::from_command(c, self.diagnostics_lazy())
    }
}

// ---------------------------------------------------------------------------------------------
// Running client commands, bounded in time
// ---------------------------------------------------------------------------------------------

pub enum Input {
    Null,
    Bytes(Vec<u8>),
    File(PathBuf),
}

pub struct Cmd {
    cmd: Command,
    input: Input,
    timeout: Duration,
    /// "proxy_log_path\0sshd_log_path" (either may be empty)
    diag_paths: String,
}

pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub elapsed: Duration,
    pub command: String,
    diag: String,
}

impl Cmd {
    pub fn from_command(cmd: Command, diag_paths: String) -> Cmd {
        Cmd {
            cmd,
            input: Input::Null,
            timeout: Duration::from_secs(30),
            diag_paths,
        }
    }

    pub fn arg(mut self, a: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.arg(a);
        self
    }

    pub fn args<I, S>(mut self, a: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(a);
        self
    }

    pub fn env(mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(k, v);
        self
    }

    pub fn stdin_bytes(mut self, b: impl Into<Vec<u8>>) -> Self {
        self.input = Input::Bytes(b.into());
        self
    }

    pub fn stdin_file(mut self, p: &Path) -> Self {
        self.input = Input::File(p.to_path_buf());
        self
    }

    pub fn timeout(mut self, secs: u64) -> Self {
        self.timeout = Duration::from_secs(secs);
        self
    }

    fn describe(&self) -> String {
        let mut s = self.cmd.get_program().to_string_lossy().to_string();
        for a in self.cmd.get_args() {
            let a = a.to_string_lossy();
            if a.contains(' ') || a.is_empty() {
                let _ = write!(s, " '{a}'");
            } else {
                let _ = write!(s, " {a}");
            }
        }
        s
    }

    fn diag(&self) -> String {
        let mut parts = self.diag_paths.split('\0');
        let p = parts.next().unwrap_or("");
        let s = parts.next().unwrap_or("");
        let read = |p: &str| {
            if p.is_empty() {
                String::new()
            } else {
                String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).to_string()
            }
        };
        if p.is_empty() && s.is_empty() {
            return String::new();
        }
        format!(
            "\n--- proxy serve stderr (tail) ---\n{}\n--- sshd log (tail) ---\n{}",
            tail(&read(p), 6000),
            tail(&read(s), 4000)
        )
    }

    /// Starts the command with stdout/stderr going to temp files; for background clients
    /// (e.g. `ssh -N -L ...`). Killed on Drop.
    pub fn spawn(mut self) -> Running {
        let dir = tempfile::Builder::new().prefix("cmd-").tempdir().unwrap();
        let out_path = dir.path().join("stdout");
        let err_path = dir.path().join("stderr");
        let stdin = match &self.input {
            Input::Null => Stdio::null(),
            Input::File(p) => Stdio::from(fs::File::open(p).unwrap()),
            Input::Bytes(_) => Stdio::piped(),
        };
        let command = self.describe();
        let mut child = self
            .cmd
            .stdin(stdin)
            .stdout(Stdio::from(fs::File::create(&out_path).unwrap()))
            .stderr(Stdio::from(fs::File::create(&err_path).unwrap()))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {command}: {e} ({INSTALL_HINT})"));
        if let Input::Bytes(b) = std::mem::replace(&mut self.input, Input::Null) {
            let mut w = child.stdin.take().unwrap();
            thread::spawn(move || {
                let _ = w.write_all(&b);
            });
        }
        Running {
            child: Some(child),
            dir,
            out_path,
            err_path,
            started: Instant::now(),
            timeout: self.timeout,
            command,
            diag: self.diag_paths.clone(),
        }
    }

    /// Runs to completion; panics (with stderr and proxy/sshd logs) if it exceeds the timeout.
    pub fn run(self) -> Output {
        self.spawn().wait()
    }
}

pub struct Running {
    child: Option<Child>,
    dir: tempfile::TempDir,
    out_path: PathBuf,
    err_path: PathBuf,
    started: Instant,
    timeout: Duration,
    pub command: String,
    diag: String,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn stderr_so_far(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.err_path).unwrap_or_default()).to_string()
    }

    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().unwrap().try_wait().ok().flatten()
    }

    /// Waits up to the command's timeout (from its start).
    pub fn wait(self) -> Output {
        let deadline = self.started + self.timeout;
        self.wait_until(deadline)
    }

    /// Waits at most `d` from now.
    pub fn wait_for(self, d: Duration) -> Output {
        self.wait_until(Instant::now() + d)
    }

    fn wait_until(mut self, deadline: Instant) -> Output {
        let child = self.child.as_mut().unwrap();
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                let elapsed = self.started.elapsed();
                kill_tree(child);
                let stderr = self.stderr_so_far();
                let stdout = fs::read(&self.out_path).unwrap_or_default();
                let diag = Cmd::diag_from(&self.diag);
                panic!(
                    "TIMEOUT: `{}` still running after {:.1} s (killed)\n--- stdout ({} bytes, tail) ---\n{}\n--- stderr ---\n{}{}",
                    self.command,
                    elapsed.as_secs_f64(),
                    stdout.len(),
                    printable_tail(&stdout, 2000),
                    tail(&stderr, 4000),
                    diag
                );
            }
            thread::sleep(Duration::from_millis(10));
        };
        let elapsed = self.started.elapsed();
        self.child = None;
        Output {
            status,
            stdout: fs::read(&self.out_path).unwrap_or_default(),
            stderr: self.stderr_so_far(),
            elapsed,
            command: self.command.clone(),
            diag: self.diag.clone(),
        }
    }
}

impl Cmd {
    fn diag_from(paths: &str) -> String {
        let c = Cmd::from_command(Command::new("true"), paths.to_string());
        c.diag()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_tree(&mut c);
        }
        let _ = &self.dir;
    }
}

impl Output {
    /// Exit code; a client killed by a signal maps to 128+N like a shell does.
    pub fn code(&self) -> i32 {
        use std::os::unix::process::ExitStatusExt;
        self.status
            .code()
            .unwrap_or_else(|| 128 + self.status.signal().unwrap_or(0))
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).to_string()
    }

    /// A readable report of this run plus proxy/sshd logs, for assertion messages.
    pub fn report(&self) -> String {
        format!(
            "command: {}\nexit: {} after {:.1} s\n--- stdout ({} bytes, tail) ---\n{}\n--- stderr ---\n{}{}",
            self.command,
            self.code(),
            self.elapsed.as_secs_f64(),
            self.stdout.len(),
            printable_tail(&self.stdout, 2000),
            tail(&self.stderr, 4000),
            Cmd::diag_from(&self.diag)
        )
    }

    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code(), code, "expected exit {code}\n{}", self.report());
        self
    }

    pub fn assert_success(&self) -> &Self {
        self.assert_code(0)
    }

    pub fn assert_stdout(&self, expected: &str) -> &Self {
        assert_eq!(
            self.stdout_text(),
            expected,
            "stdout differs\n{}",
            self.report()
        );
        self
    }

    pub fn assert_stdout_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stdout_text().contains(needle),
            "stdout lacks {needle:?}\n{}",
            self.report()
        );
        self
    }

    pub fn assert_stderr_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n{}",
            self.report()
        );
        self
    }

    /// Case-insensitive variant.
    pub fn assert_stderr_contains_ci(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.to_lowercase().contains(&needle.to_lowercase()),
            "stderr lacks {needle:?} (case-insensitive)\n{}",
            self.report()
        );
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Data helpers
// ---------------------------------------------------------------------------------------------

/// Writes `len` random bytes (from /dev/urandom) to `path`.
pub fn random_file(path: &Path, len: u64) {
    let mut src = fs::File::open("/dev/urandom").unwrap().take(len);
    let mut dst = fs::File::create(path).unwrap();
    let n = std::io::copy(&mut src, &mut dst).unwrap();
    assert_eq!(n, len);
}

/// sha256 of a file via `sha256sum` (coreutils), for messages.
pub fn sha256_file(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

/// Asserts two files are byte-identical, reporting sizes, checksums and the first difference.
pub fn assert_same_file(expected: &Path, actual: &Path, context: &str) {
    let a = fs::read(expected).unwrap_or_else(|e| panic!("read {}: {e}", expected.display()));
    let b =
        fs::read(actual).unwrap_or_else(|e| panic!("{context}: read {}: {e}", actual.display()));
    if a != b {
        let first = a
            .iter()
            .zip(b.iter())
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len()));
        panic!(
            "{context}: files differ: expected {} bytes sha256 {}, got {} bytes sha256 {}; first difference at byte {first}",
            a.len(),
            sha256_file(expected),
            b.len(),
            sha256_file(actual)
        );
    }
}

/// A TCP echo server on 127.0.0.1 (one thread per connection); stops with the process.
pub fn echo_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            thread::spawn(move || {
                let mut r = s.try_clone().unwrap();
                let _ = std::io::copy(&mut r, &mut s);
            });
        }
    });
    port
}

/// Connects (retrying until `timeout`), writes `payload` (from a thread, then half-closes),
/// reads until EOF: a round trip through an echo path.
pub fn echo_roundtrip(port: u16, payload: &[u8], timeout: Duration) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + timeout;
    let mut last_err = String::new();
    while Instant::now() < deadline {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(mut s) => {
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let mut w = s.try_clone().unwrap();
                let data = payload.to_vec();
                let writer = thread::spawn(move || {
                    let r = w.write_all(&data);
                    let _ = w.shutdown(std::net::Shutdown::Write);
                    r
                });
                let mut got = Vec::new();
                let read = s.read_to_end(&mut got);
                let wrote = writer.join().unwrap();
                if got.is_empty() {
                    // ssh accepted locally but the forward is not up yet (or failed): retry.
                    last_err = format!(
                        "connection closed with no data (read: {read:?}, write: {wrote:?})"
                    );
                    thread::sleep(Duration::from_millis(250));
                    continue;
                }
                if let Err(e) = read {
                    return Err(format!("read after {} bytes: {e}", got.len()));
                }
                return Ok(got);
            }
            Err(e) => {
                last_err = format!("connect 127.0.0.1:{port}: {e}");
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
    Err(last_err)
}

/// A `ssh-agent -D -a SOCK` child, killed on Drop.
pub struct Agent {
    pub sock: PathBuf,
    child: Child,
}

impl Agent {
    pub fn start(dir: &Path) -> Agent {
        let sock = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ssh-agent");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            assert!(
                Instant::now() < deadline,
                "ssh-agent socket {} did not appear",
                sock.display()
            );
            thread::sleep(Duration::from_millis(20));
        }
        Agent { sock, child }
    }

    pub fn add(&self, key: &Path) {
        run_checked(
            Command::new("ssh-add")
                .arg(key)
                .env("SSH_AUTH_SOCK", &self.sock),
        );
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Instantiates a scenario `fn name(mode: Mode)` as two tests: `name::jump` and
/// `name::proxy_command`.
#[macro_export]
macro_rules! both_modes {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[test]
            fn jump() {
                super::$name($crate::common::Mode::Jump)
            }
            #[test]
            fn proxy_command() {
                super::$name($crate::common::Mode::ProxyCommand)
            }
        }
    )+};
}

/// Plain OpenSSH straight to `sshd` as `user` with `key`: no proxy, no host key checks,
/// batch mode. The remote command, if any, is appended by the caller.
pub fn plain_ssh(sshd: &Sshd, key: &Path, user: &str) -> Command {
    let mut c = Command::new("ssh");
    c.args(["-F", "/dev/null"])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args([
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
        ])
        .args(["-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR"])
        .args(["-o", "ConnectTimeout=5", "-i"])
        .arg(key)
        .args(["-p", &sshd.port.to_string(), "-l", user, &sshd.ip]);
    c
}
