#!/usr/bin/env bash
# The one test command, for a fresh machine or a laptop:
#   scripts/test.sh                      # everything
#   scripts/test.sh --test session       # extra arguments go to `cargo test`
#   TEST_THREADS=1 scripts/test.sh       # fewer parallel tests (default 2)
#
# Installs what the tests need when it is missing (openssh-server via apt when root; moto in a
# virtualenv at .venv/), builds every target once, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

log() { printf '==> %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else log "need root to run: $*"; return 1
    fi
}

apt_updated=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || { log "apt-get not found; install by hand: $*"; return 1; }
    if [ "$apt_updated" = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

# --- OpenSSH: sshd plays the instance; ssh/scp/sftp/ssh-agent play the user -------------------
if [ ! -x /usr/sbin/sshd ] || ! command -v ssh >/dev/null 2>&1 || ! command -v sftp >/dev/null 2>&1; then
    log "installing openssh-server and openssh-client"
    apt_install openssh-server openssh-client
fi
# sshd refuses to start without its privilege-separation directory.
[ -d /run/sshd ] || as_root mkdir -p /run/sshd || true

# The tests log in upstream as ec2-user (as on Amazon Linux) when run as root. usermod -p '*'
# unlocks the account for key logins without giving it a password.
if [ "$(id -u)" = 0 ] && ! id ec2-user >/dev/null 2>&1; then
    log "creating the test login user ec2-user"
    useradd -m -s /bin/bash ec2-user
    usermod -p '*' ec2-user
fi

# --- python3 (remote-forward test client; moto) -------------------------------------------------
if [ ! -x /usr/bin/python3 ]; then
    log "installing python3"
    apt_install python3 python3-venv
fi

# --- moto's server as the EC2 API, in .venv/ ----------------------------------------------------
if [ ! -x .venv/bin/moto_server ]; then
    log "installing moto[server] into .venv/"
    if ! python3 -m venv .venv 2>/dev/null || [ ! -x .venv/bin/pip ]; then
        rm -rf .venv
        apt_install python3-venv
        python3 -m venv .venv
    fi
    .venv/bin/pip install -q --disable-pip-version-check 'moto[server]'
fi
# Appended (not prepended): moto_server is found, python3 stays the system one.
export PATH="$PATH:$repo/.venv/bin"
export MOTO_SERVER="$repo/.venv/bin/moto_server"

# --- Rust ---------------------------------------------------------------------------------------
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    log "installing Rust (rustup, stable)"
    command -v curl >/dev/null 2>&1 || apt_install curl ca-certificates
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    export PATH="$HOME/.cargo/bin:$PATH"
fi

# --- build once, then run every test ------------------------------------------------------------
# The end-to-end tests each start an sshd, the proxy and several ssh processes; the 64 MiB
# transfer tests are heavy. Two at a time keeps CPU and memory sane on a 2-core machine.
threads=${TEST_THREADS:-2}
log "cargo build --all-targets"
cargo build --all-targets
log "cargo test (test threads: $threads)"
RUST_BACKTRACE=${RUST_BACKTRACE:-1} cargo test --no-fail-fast "$@" -- --test-threads="$threads"
