#!/usr/bin/env bash
# Relay benchmark (not a test): ec2-ssh-proxy against OpenSSH's own jump host, side by side.
#
#   bench/relay.sh
#
# Measures, in one run, for plain OpenSSH `ssh -J` through a second sshd, our jump mode
# (`serve`), and our ProxyCommand mode (`connect %h %p`):
#   - time to connect and run `true` (median of BENCH_RUNS, default 20)
#   - throughput of BENCH_SIZE (default 1G) through `cat` each way, median of BENCH_ROUNDS
#     (default 3) rounds that interleave the paths
#   - resident memory (VmRSS) of `serve` with BENCH_IDLE (default 50) idle sessions open
# and prints the ratios ours / OpenSSH's against the targets:
#   connect <= 1.10x, throughput >= 0.8x (jump mode) and >= 1.0x (ProxyCommand mode), RSS < 64 MiB.
# Plain `ssh` straight to the target is shown as a reference row.
#
# Knobs (environment): BENCH_SIZE=1G BENCH_RUNS=20 BENCH_ROUNDS=3 BENCH_IDLE=50 BENCH_TIMEOUT=300 (per transfer)
#   BENCH_CIPHER (default: first of aes128-gcm@openssh.com, aes256-gcm@openssh.com,
#   chacha20-poly1305@openssh.com, aes128-ctr that every path accepts) BENCH_CONNECT_CMD=true
#   BENCH_NO_BUILD=1 (use the existing binary) BENCH_BIN=path (another build, e.g. target/debug) BENCH_STRICT=1 (exit 1 on a miss)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

SIZE=${BENCH_SIZE:-1G}
RUNS=${BENCH_RUNS:-20}
ROUNDS=${BENCH_ROUNDS:-3}
IDLE=${BENCH_IDLE:-50}
XFER_TIMEOUT=${BENCH_TIMEOUT:-300}
CONNECT_CMD=${BENCH_CONNECT_CMD:-true}
SSHD=/usr/sbin/sshd

for t in "$SSHD" ssh ssh-keygen python3 timeout head; do
    command -v "$t" >/dev/null 2>&1 || { echo "bench: $t not found (apt-get install -y openssh-server)" >&2; exit 1; }
done

if [ "${BENCH_NO_BUILD:-}" != 1 ]; then
    echo "==> cargo build --release" >&2
    cargo build --release >&2
fi
BIN=${BENCH_BIN:-$repo/target/release/ec2-ssh-proxy}
[ -x "$BIN" ] || { echo "bench: $BIN missing" >&2; exit 1; }

T=$(mktemp -d /tmp/ec2sp-bench.XXXXXX)
chmod 755 "$T"
PIDS=()

# Kill a process and everything under it, by pid (children first found via /proc ppid).
kill_tree() {
    local p=$1 c
    for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do kill_tree "$c"; done
    kill -KILL "$p" 2>/dev/null || true
}
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill_tree "$p"; done
    wait 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ns() { date +%s%N; }

wait_for_text() { # file text timeout_s
    local deadline=$((SECONDS + $3))
    until grep -qF -- "$2" "$1" 2>/dev/null; do
        [ $SECONDS -lt $deadline ] || { echo "bench: '$2' not seen in $1 within $3 s:" >&2; cat "$1" >&2; exit 1; }
        sleep 0.05
    done
}

mkdir -p /run/sshd
# As root, log in as ec2-user (scripts/test.sh creates it): root's shell startup here runs
# pyenv, whose lock would make every login wait and skew the connect times.
user=$(id -un)
if [ "$user" = root ] && id ec2-user >/dev/null 2>&1; then user=ec2-user; fi
chmod 755 "$T"

# --- keys -------------------------------------------------------------------------------------
ssh-keygen -q -t ed25519 -N '' -C bench-client -f "$T/client_key"
ssh-keygen -q -t ed25519 -N '' -C bench-upstream -f "$T/upstream_key"
mkdir -m 700 "$T/keyring" && cp "$T/upstream_key" "$T/keyring/" && chmod 600 "$T/keyring/upstream_key"
# The target accepts the user's key (OpenSSH -J is end to end) and the proxy's keyring key.
cat "$T/client_key.pub" "$T/upstream_key.pub" > "$T/target_authorized_keys"
cp "$T/client_key.pub" "$T/jump_authorized_keys"
chmod 644 "$T"/*_authorized_keys

start_sshd() { # name port authorized_keys
    local name=$1 port=$2 ak=$3
    ssh-keygen -q -t ed25519 -N '' -f "$T/${name}_host_key"
    cat > "$T/${name}_sshd_config" <<CFG
ListenAddress 127.0.0.1
Port $port
HostKey $T/${name}_host_key
PidFile none
AuthorizedKeysFile $ak
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
LogLevel ERROR
AllowTcpForwarding yes
AllowAgentForwarding yes
PermitRootLogin prohibit-password
MaxStartups 400:30:800
MaxSessions 200
Subsystem sftp internal-sftp
CFG
    "$SSHD" -D -e -o LogLevel=INFO -f "$T/${name}_sshd_config" 2> "$T/${name}_sshd.log" &
    PIDS+=($!); disown $!
    wait_for_text "$T/${name}_sshd.log" "Server listening on" 20
}

TPORT=$(free_port); start_sshd target "$TPORT" "$T/target_authorized_keys"
JPORT=$(free_port); start_sshd jump "$JPORT" "$T/jump_authorized_keys"

# --- our proxy --------------------------------------------------------------------------------
mkdir -m 700 "$T/state"
cat > "$T/proxy.toml" <<CFG
listen = "127.0.0.1:0"
client_keys = ["$T/client_key.pub"]
keyring = ["$T/keyring"]
ca_patterns = "*"

[[hosts]]
match = "web-1"
dial = "127.0.0.1:$TPORT"
CFG
"$BIN" --config "$T/proxy.toml" --state-dir "$T/state" serve --listen 127.0.0.1:0 2> "$T/serve.log" &
SERVE_PID=$!
PIDS+=($SERVE_PID); disown $SERVE_PID
wait_for_text "$T/serve.log" "ec2-ssh-proxy: listening on " 20
PPORT=$(sed -n 's/^ec2-ssh-proxy: listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/serve.log" | head -1)
timeout 30 "$BIN" --config "$T/proxy.toml" --state-dir "$T/state" ca > "$T/ca.out"
grep '^@cert-authority' "$T/ca.out" > "$T/known_hosts_ours"

# Plain OpenSSH: both sshd host keys pinned, as a user would have them.
{
    echo "[127.0.0.1]:$JPORT $(cat "$T/jump_host_key.pub")"
    echo "[127.0.0.1]:$TPORT $(cat "$T/target_host_key.pub")"
} > "$T/known_hosts_plain"

write_cfg() { # file known_hosts cipher
    cat > "$1" <<CFG
Host *
  UserKnownHostsFile $2
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  IdentityFile $T/client_key
  IdentitiesOnly yes
  BatchMode yes
  ConnectTimeout 10
  ControlMaster no
  ControlPath none
  UpdateHostKeys no
  LogLevel ERROR
  Ciphers $3
CFG
}

PC="ProxyCommand=$BIN --config $T/proxy.toml --state-dir $T/state connect %h %p"
run_ssh() { # path cmd...   (stdin/stdout as given by the caller)
    local path=$1; shift
    case $path in
        direct) ssh -F "$T/plain.cfg" -p "$TPORT" "$user@127.0.0.1" "$@" ;;
        plain)  ssh -F "$T/plain.cfg" -J "$user@127.0.0.1:$JPORT" -p "$TPORT" "$user@127.0.0.1" "$@" ;;
        jump)   ssh -F "$T/ours.cfg" -J "$user@127.0.0.1:$PPORT" "$user@web-1" "$@" ;;
        pc)     ssh -F "$T/ours.cfg" -o "$PC" "$user@web-1" "$@" ;;
    esac
}
export T TPORT JPORT PPORT user PC
export -f run_ssh
PATHS=(plain jump pc direct)
declare -A LABEL=([plain]="OpenSSH -J" [jump]="ours: jump" [pc]="ours: ProxyCommand" [direct]="direct (ref)" [idle]="idle sessions")

# --- pick a cipher every path accepts ------------------------------------------------------------
CIPHER=${BENCH_CIPHER:-}
REJECTED=""
for c in ${CIPHER:-aes128-gcm@openssh.com aes256-gcm@openssh.com chacha20-poly1305@openssh.com aes128-ctr}; do
    write_cfg "$T/plain.cfg" "$T/known_hosts_plain" "$c"
    write_cfg "$T/ours.cfg" "$T/known_hosts_ours" "$c"
    ok=1
    for p in "${PATHS[@]}"; do
        out=$(timeout 20 bash -c 'run_ssh "$@"' _ "$p" echo ok </dev/null 2>"$T/probe.err") || true
        if [ "$out" != ok ]; then
            ok=0; REJECTED="$REJECTED $c (${LABEL[$p]}: $(tr '\n' ' ' < "$T/probe.err" | tail -c 200))"
            echo "bench: cipher $c failed on path ${LABEL[$p]}: $(tail -c 300 "$T/probe.err")" >&2; break
        fi
    done
    if [ $ok = 1 ]; then CIPHER=$c; break; fi
    CIPHER=
done
[ -n "$CIPHER" ] || { echo "bench: no cipher works on every path; serve log:" >&2; tail -50 "$T/serve.log" >&2; exit 1; }

# --- connect time -----------------------------------------------------------------------------------
declare -A CONNECT
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print "NA"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
for p in "${PATHS[@]}"; do
    : > "$T/times.$p"
    fails=0
    for _ in $(seq "$RUNS"); do
        t0=$(now_ns)
        if timeout 20 bash -c 'run_ssh "$@"' _ "$p" $CONNECT_CMD </dev/null >/dev/null 2>>"$T/err.$p"; then
            echo $(( ($(now_ns) - t0) / 1000000 )) >> "$T/times.$p"
        else
            fails=$((fails + 1))
        fi
    done
    CONNECT[$p]=$(median < "$T/times.$p")
    [ $fails = 0 ] || CONNECT[$p]="${CONNECT[$p]}(${fails}fail)"
    echo "connect+$CONNECT_CMD ${LABEL[$p]}: median ${CONNECT[$p]} ms" >&2
done

# --- throughput -------------------------------------------------------------------------------------
bytes=$(head -c "$SIZE" /dev/zero | wc -c)
mib=$((bytes / 1048576))
declare -A UP DOWN
xfer() { # path direction -> MiB/s or FAIL/TIMEOUT
    local p=$1 dir=$2 t0 rc
    t0=$(now_ns)
    set +e
    if [ "$dir" = up ]; then
        head -c "$SIZE" /dev/zero | timeout "$XFER_TIMEOUT" bash -c 'run_ssh "$@"' _ "$p" 'cat > /dev/null' 2>>"$T/err.$p"
        rc=$?
    else
        timeout "$XFER_TIMEOUT" bash -c 'run_ssh "$@"' _ "$p" "head -c $SIZE /dev/zero" </dev/null 2>>"$T/err.$p" | wc -c > "$T/down.count"
        rc=${PIPESTATUS[0]}
        [ "$rc" = 0 ] && [ "$(cat "$T/down.count")" != "$bytes" ] && rc=1
    fi
    set -e
    local ms=$(( ($(now_ns) - t0) / 1000000 ))
    if [ "$rc" = 124 ]; then echo "TIMEOUT"
    elif [ "$rc" != 0 ]; then echo "FAIL($rc)"
    else awk -v m="$mib" -v ms="$ms" 'BEGIN {printf "%.1f", m / (ms / 1000)}'
    fi
}
# Rounds interleave the paths, so that a slow spell of this machine hits all of them alike;
# each figure is the median of its rounds (a failed transfer counts as 0).
declare -A UPS DOWNS
for round in $(seq "$ROUNDS"); do
    for p in "${PATHS[@]}"; do
        v=$(xfer "$p" up);   UPS[$p]="${UPS[$p]:-} $v";   echo "round $round upload   ${LABEL[$p]}: $v MiB/s" >&2
        v=$(xfer "$p" down); DOWNS[$p]="${DOWNS[$p]:-} $v"; echo "round $round download ${LABEL[$p]}: $v MiB/s" >&2
    done
done
median_of() { # values... ; non-numbers (FAIL, TIMEOUT) count as 0 but are shown if they win
    printf '%s\n' "$@" | awk '{v = ($1 ~ /^[0-9.]+$/) ? $1 : 0; print v, $1}' | sort -n | awk '{a[NR]=$2} END {print a[int((NR+1)/2)]}'
}
for p in "${PATHS[@]}"; do
    # shellcheck disable=SC2086
    UP[$p]=$(median_of ${UPS[$p]}); DOWN[$p]=$(median_of ${DOWNS[$p]})
done

# --- memory of serve with idle sessions ---------------------------------------------------------------
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$SERVE_PID/status"; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$SERVE_PID/status"; }
RSS_BEFORE=$(rss_kib)
MARK="sleep 60.$$"   # a distinctive command line to count the sessions on the target
idle_pids=()
for _ in $(seq "$IDLE"); do
    timeout 120 ssh -F "$T/ours.cfg" -J "$user@127.0.0.1:$PPORT" "$user@web-1" "$MARK" </dev/null >/dev/null 2>>"$T/err.idle" &
    idle_pids+=($!)
    PIDS+=($!); disown $!
done
deadline=$((SECONDS + 60))
open=0
while [ $SECONDS -lt $deadline ]; do
    open=$(pgrep -c -x -f "$MARK" || true)
    [ "$open" -ge "$IDLE" ] && break
    sleep 0.5
done
sleep 1
RSS_IDLE=$(rss_kib)
cp "$T/err.idle" "$T/err.idle.open" 2>/dev/null || true   # errors before we kill them
for p in "${idle_pids[@]}"; do kill_tree "$p"; done
RSS_HWM=$(hwm_kib)

# --- report -------------------------------------------------------------------------------------
kib_to_mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a+0 > 0 && b+0 > 0) printf "%.2f", a / b; else print "NA" }'; }
verdict() { # value op target
    awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN {
        if (v == "NA") { print "MISS"; exit }
        ok = (op == "<=") ? (v <= t) : (op == ">=") ? (v >= t) : (v < t);
        print ok ? "ok" : "MISS" }'
}

echo
echo "ec2-ssh-proxy relay benchmark"
echo "  $(ssh -V 2>&1); cipher: $CIPHER (asked for by every ssh; the proxy's own hop to the target prefers aes128-gcm); $(nproc) CPUs"
[ -z "$REJECTED" ] || echo "  ciphers not accepted by every path:$REJECTED"
echo "  transfer size: $SIZE through cat, median of $ROUNDS rounds; connect = ssh ... $CONNECT_CMD, median of $RUNS"
echo
printf '%-22s %16s %16s %16s\n' "path" "connect ms" "upload MiB/s" "download MiB/s"
for p in plain jump pc direct; do
    printf '%-22s %16s %16s %16s\n' "${LABEL[$p]}" "${CONNECT[$p]}" "${UP[$p]}" "${DOWN[$p]}"
done
echo
echo "serve VmRSS: $(kib_to_mib "$RSS_BEFORE") MiB idle, $(kib_to_mib "$RSS_IDLE") MiB with $open/$IDLE idle sessions open (peak VmHWM over the run $(kib_to_mib "$RSS_HWM") MiB)"
echo
echo "ratios (ours / OpenSSH -J)                      value  target   verdict"
miss=0
row() { # label value op target
    local v=$2 r
    r=$(verdict "$v" "$3" "$4"); [ "$r" = ok ] || miss=1
    printf '%-46s %6s  %2s %-5s %s\n' "$1" "$v" "$3" "$4" "$r"
}
row "connect, jump mode"                 "$(ratio "${CONNECT[jump]%%(*}" "${CONNECT[plain]%%(*}")" "<=" 1.10
row "connect, ProxyCommand mode"         "$(ratio "${CONNECT[pc]%%(*}" "${CONNECT[plain]%%(*}")" "<=" 1.10
row "upload throughput, jump mode"       "$(ratio "${UP[jump]}" "${UP[plain]}")" ">=" 0.8
row "download throughput, jump mode"     "$(ratio "${DOWN[jump]}" "${DOWN[plain]}")" ">=" 0.8
row "upload throughput, ProxyCommand"    "$(ratio "${UP[pc]}" "${UP[plain]}")" ">=" 1.0
row "download throughput, ProxyCommand"  "$(ratio "${DOWN[pc]}" "${DOWN[plain]}")" ">=" 1.0
row "serve RSS MiB, $IDLE idle sessions" "$(kib_to_mib "$RSS_IDLE")" "<" 64
mv "$T/err.idle.open" "$T/err.idle" 2>/dev/null || rm -f "$T/err.idle"
for f in plain jump pc direct idle; do
    if [ -s "$T/err.$f" ]; then
        echo
        echo "client stderr, ${LABEL[$f]:-idle sessions} (counts):"
        sort "$T/err.$f" | uniq -c | sort -rn | head -5
    fi
done
if [ "${BENCH_STRICT:-}" = 1 ] && [ $miss = 1 ]; then exit 1; fi
exit 0
