//! moto's server as the EC2 API: started per test on a free port, killed on Drop, and a
//! scenario (tests/fixtures/moto_scenario.py) that builds the two-account shared-AMI world.

use std::fs;
use std::io::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

const INSTALL_HINT: &str = "run scripts/test.sh, which installs moto into .venv (python3 -m venv .venv && .venv/bin/pip install 'moto[server]')";

pub const OLD_ACCOUNT: &str = "111111111111";
pub const NEW_ACCOUNT: &str = "222222222222";
pub const OLD_PROFILE: &str = "old-account";
pub const NEW_PROFILE: &str = "new-account";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `MOTO_SERVER`, else `.venv/bin/moto_server` in the repo; panics (never skips) when missing.
pub fn moto_server_bin() -> PathBuf {
    let path = match std::env::var_os("MOTO_SERVER") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => repo().join(".venv/bin/moto_server"),
    };
    if !path.exists() {
        panic!(
            "moto_server not found at {}: {INSTALL_HINT}",
            path.display()
        );
    }
    path
}

/// The python next to moto_server (its venv has boto3).
pub fn moto_python() -> PathBuf {
    let python = moto_server_bin().with_file_name("python");
    if !python.exists() {
        panic!("{} not found: {INSTALL_HINT}", python.display());
    }
    python
}

pub struct Moto {
    child: Child,
    pub port: u16,
    pub endpoint: String,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Moto {
    pub fn start() -> Moto {
        let mut child = Command::new(moto_server_bin())
            .args(["-H", "127.0.0.1", "-p", "0"])
            .env("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
            .env_remove("MOTO_ACCOUNT_ID")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start moto_server: {e}: {INSTALL_HINT}"));
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let (tx, log) = (tx.clone(), log.clone());
            thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(at) = line.find("Running on http://127.0.0.1:") {
                        let port = &line[at + "Running on http://127.0.0.1:".len()..];
                        let port: String = port.chars().take_while(char::is_ascii_digit).collect();
                        let _ = tx.send(port.parse::<u16>().unwrap_or(0));
                    }
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        let port = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(port) if port != 0 => port,
            _ => {
                let _ = child.kill();
                panic!(
                    "moto_server did not say where it listens within 30 s:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        let moto = Moto {
            child,
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
        };
        moto.wait_ready();
        moto
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if http_get_status(self.port, "/moto-api/") == Some(200) {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
        panic!("moto_server not ready within 30 s:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Runs the scenario script; its public keys are the given OpenSSH lines.
    pub fn scenario(&self, old_key_pub: &str, new_key_pub: &str) -> Scenario {
        let script = repo().join("tests/fixtures/moto_scenario.py");
        let out = Command::new(moto_python())
            .arg(&script)
            .args([&self.endpoint, old_key_pub.trim(), new_key_pub.trim()])
            .output()
            .expect("run moto_scenario.py");
        if !out.status.success() {
            panic!(
                "moto_scenario.py failed: {}\n{}\nmoto log:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                self.log()
            );
        }
        let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "moto_scenario.py printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        Scenario { json }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status code of a plain HTTP/1.0 GET, or None when nothing answers.
fn http_get_status(port: u16, path: &str) -> Option<u16> {
    let mut stream =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What moto_scenario.py built.
pub struct Scenario {
    pub json: Value,
}

impl Scenario {
    pub fn region(&self) -> &str {
        self.json["region"].as_str().unwrap()
    }
    pub fn instance(&self, name: &str) -> String {
        self.json["instances"][name]
            .as_str()
            .unwrap_or_else(|| panic!("no instance {name} in {}", self.json))
            .to_string()
    }
    pub fn image(&self, name: &str) -> String {
        self.json["images"][name]
            .as_str()
            .unwrap_or_else(|| panic!("no image {name} in {}", self.json))
            .to_string()
    }
    /// web-1's address or DNS name: `public_ip`, `private_ip`, `public_dns`, `private_dns`.
    pub fn web(&self, field: &str) -> String {
        self.json["web"][field]
            .as_str()
            .unwrap_or_else(|| panic!("web-1 has no {field}: {}", self.json))
            .to_string()
    }

    /// An AWS config/credentials pair in `dir`: profile `old-account` reaches 111111111111,
    /// `new-account` (also `default`) reaches 222222222222, both in the scenario region and
    /// pointing at `endpoint`. Returns (config file, credentials file).
    pub fn write_aws_files(&self, dir: &Path, endpoint: &str) -> (PathBuf, PathBuf) {
        let region = self.region();
        let mut config = String::new();
        let mut credentials = String::new();
        for (profile, account) in [
            (OLD_PROFILE, OLD_ACCOUNT),
            (NEW_PROFILE, NEW_ACCOUNT),
            ("default", NEW_ACCOUNT),
        ] {
            let keys = &self.json["accounts"][account];
            let header = if profile == "default" {
                "[default]".to_string()
            } else {
                format!("[profile {profile}]")
            };
            config.push_str(&format!(
                "{header}\nregion = {region}\nendpoint_url = {endpoint}\n\n"
            ));
            credentials.push_str(&format!(
                "[{profile}]\naws_access_key_id = {}\naws_secret_access_key = {}\n\n",
                keys["access_key_id"].as_str().unwrap(),
                keys["secret_access_key"].as_str().unwrap()
            ));
        }
        let config_path = dir.join("aws-config");
        let credentials_path = dir.join("aws-credentials");
        fs::write(&config_path, config).unwrap();
        fs::write(&credentials_path, credentials).unwrap();
        (config_path, credentials_path)
    }

    /// The environment a child process (the proxy) needs to reach moto as account 222….
    pub fn aws_env(&self, dir: &Path, endpoint: &str) -> Vec<(String, String)> {
        let (config, credentials) = self.write_aws_files(dir, endpoint);
        vec![
            ("AWS_CONFIG_FILE".into(), config.display().to_string()),
            (
                "AWS_SHARED_CREDENTIALS_FILE".into(),
                credentials.display().to_string(),
            ),
            ("AWS_ENDPOINT_URL".into(), endpoint.to_string()),
            ("AWS_REGION".into(), self.region().to_string()),
            ("AWS_PROFILE".into(), NEW_PROFILE.to_string()),
        ]
    }
}
