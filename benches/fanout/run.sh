#!/usr/bin/env bash
# SSH fan-out benchmark: Orca (examples/ssh_fanout.rs) against parallel-ssh (PyPI,
# ParallelSSHClient), ansible-core (ad-hoc `raw`) and pssh (Debian, `parallel-ssh`), all
# running `true` on N loopback "hosts" served by real OpenSSH sshd, host keys checked by every
# tool, in one run, several repetitions, medians.
#
#   benches/fanout/run.sh [N...]            (default: 100 500 1000; run as root)
#
# Environment: REPS (3), FORKS (100: concurrency of every tool), PORT (2222),
# TOOLS ("orca parallel-ssh ansible pssh"), WORK (/tmp/orca-fanout), VENV (/tmp/fanout-venv),
# CALIBRATE (50: sequential `ssh host true` runs that measure sshd CPU per connection),
# QUIET (0.15) and QUIET_WAIT (0: off): before each run, wait up to QUIET_WAIT seconds for
# other processes to use less than QUIET of the machine; PRIO (1: give sshd and the tool under test
# CPU priority over other processes through a cgroup),
# KEEP=1 leaves the sshd listeners running afterwards; SKIP_BUILD=1 uses the ssh_fanout binary
# already built.
#
# What it does:
# 1. Creates the user `orca-test` (shell /bin/sh, no rc files) if missing, a client ed25519
#    key, and ceil(max(N)/16) sshd listeners (one sshd listens on at most 16 addresses): host
#    i is 127.0.(i/250+1).(i%250+1):PORT; each sshd has its own ed25519 host key; config:
#    MaxStartups 2000, UsePAM no, UseDNS no, key authentication only. Only 127.0.0.0/8 is used.
# 2. Writes a known_hosts file with every host's key (taken from the host key files, i.e.
#    verified out of band) and gives it to every tool with strict checking.
# 3. Puts every sshd (and all it forks) in one cgroup and each client run in another, and
#    reads their CPU counters before and after each run: client CPU includes every process a
#    tool starts (ssh children, ansible forks), sshd CPU includes the sessions and `true`.
# 4. Measures sshd CPU per connection with CALIBRATE sequential OpenSSH `ssh host true`; the
#    floor of a fan-out to N hosts is N x that / nproc (the servers' work spread perfectly
#    over all cores of this machine).
# 5. For each N and repetition runs every tool once (interleaved), then `ssh_fanout --warm`
#    (a fresh run followed by a second run over the pooled connections), and writes
#    $WORK/results.csv and $WORK/results.md (medians).
set -euo pipefail

NS=("$@")
[ ${#NS[@]} -gt 0 ] || NS=(100 500 1000)
REPS=${REPS:-3}
FORKS=${FORKS:-100}
PORT=${PORT:-2222}
TOOLS=${TOOLS:-"orca parallel-ssh ansible pssh"}
WORK=${WORK:-/tmp/orca-fanout}
VENV=${VENV:-/tmp/fanout-venv}
CALIBRATE=${CALIBRATE:-50}
USER_NAME=orca-test
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ORCA=$ROOT/target/release/examples/ssh_fanout
PSSH=/usr/bin/parallel-ssh
CORES=$(nproc)

die() { echo "run.sh: $*" >&2; exit 2; }
log() { echo "[$(date +%T)] $*" >&2; }

[ "$(id -u)" = 0 ] || die "run as root (sshd must switch to the test user; cgroups)"
[ -x /usr/sbin/sshd ] || die "/usr/sbin/sshd missing: apt-get install -y openssh-server"
command -v ssh-keygen >/dev/null || die "ssh-keygen missing: apt-get install -y openssh-client"
MAXN=0
for n in "${NS[@]}"; do
    [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 62500 ] || die "N must be 1..62500, got '$n'"
    [ "$n" -gt "$MAXN" ] && MAXN=$n
done

# --- tools -----------------------------------------------------------------------------------
if [[ " $TOOLS " == *" parallel-ssh "* || " $TOOLS " == *" ansible "* ]]; then
    if [ ! -x "$VENV/bin/ansible" ] || ! "$VENV/bin/python" -c 'import pssh' 2>/dev/null; then
        log "installing parallel-ssh and ansible-core into $VENV"
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install -q parallel-ssh ansible-core
    fi
fi
if [[ " $TOOLS " == *" pssh "* ]] && [ ! -x "$PSSH" ]; then
    log "installing pssh (apt)"
    apt-get install -y -q pssh >/dev/null
fi
if [[ " $TOOLS " == *" orca "* ]] && [ "${SKIP_BUILD:-0}" != 1 ]; then
    log "building ssh_fanout (release)"
    (cd "$ROOT" && cargo build -q --release --example ssh_fanout)
fi

# --- user, keys, sshd ------------------------------------------------------------------------
if ! id "$USER_NAME" >/dev/null 2>&1; then
    useradd -m -s /bin/sh "$USER_NAME"
fi
HOME_DIR=$(getent passwd "$USER_NAME" | cut -d: -f6)
rm -f "$HOME_DIR"/.bashrc "$HOME_DIR"/.profile "$HOME_DIR"/.bash_logout "$HOME_DIR"/.bash_profile
mkdir -p /run/sshd

# cgroups: v1 cpuacct or v2.
if [ -d /sys/fs/cgroup/cpuacct ]; then
    CGROOT=/sys/fs/cgroup/cpuacct
    cg_ns() { echo $(( $(cat "$1/cpuacct.usage") )); }
elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    CGROOT=/sys/fs/cgroup
    cg_ns() { echo $(( $(awk '/^usage_usec/ {print $2}' "$1/cpu.stat") * 1000 )); }
else
    die "no cgroup cpu accounting (neither cgroup v1 cpuacct nor cgroup v2) to measure CPU"
fi
CG_SSHD=$CGROOT/orca-fanout-sshd
CG_CLIENT=$CGROOT/orca-fanout-client
# CPU priority for sshd and the tool under test (PRIO=0 turns it off): other work on the machine
# (builds...) would otherwise take CPU from them. cgroup v1: a `cpu` group with a large
# cpu.shares; cgroup v2: cpu.weight on the two groups.
CG_PRIO=

PIDS=()
cleanup() {
    if [ "${KEEP:-0}" != 1 ]; then
        for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
        for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
        for g in "$CG_SSHD" "$CG_CLIENT" ${CG_PRIO:+"$CG_PRIO"}; do
            for _ in $(seq 50); do
                [ -s "$g/cgroup.procs" ] || break
                sleep 0.1
            done
            rmdir "$g" 2>/dev/null || log "warning: could not remove the cgroup $g"
        done
    fi
}
trap cleanup EXIT

if [ -d "$CG_SSHD" ] && [ -s "$CG_SSHD/cgroup.procs" ]; then
    die "$CG_SSHD still has processes (a previous run with KEEP=1?): kill them first"
fi
mkdir -p "$CG_SSHD" "$CG_CLIENT"
if [ "${PRIO:-1}" = 1 ]; then
    if [ -f /sys/fs/cgroup/cpu/cpu.shares ]; then
        CG_PRIO=/sys/fs/cgroup/cpu/orca-fanout
        mkdir -p "$CG_PRIO"
        echo 65536 > "$CG_PRIO/cpu.shares"
    elif [ "$CGROOT" = /sys/fs/cgroup ]; then
        echo +cpu > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
        echo 10000 > "$CG_SSHD/cpu.weight" 2>/dev/null || log "warning: cannot set cpu.weight"
        echo 10000 > "$CG_CLIENT/cpu.weight" 2>/dev/null || true
    fi
fi
# sh -c "$IN_CG" sh GROUP PRIO_GROUP CMD...: CMD (same pid) in GROUP and the priority group.
IN_CG='for g in "$1" "$2"; do [ -z "$g" ] || echo $$ > "$g/cgroup.procs"; done; shift 2; exec "$@"'

rm -rf "$WORK"
mkdir -p "$WORK"
chmod 755 "$WORK"
ssh-keygen -q -t ed25519 -N '' -C fanout-client -f "$WORK/id_ed25519"
cp "$WORK/id_ed25519.pub" "$WORK/authorized_keys"
chmod 644 "$WORK/authorized_keys"

addr() { echo "127.0.$(( $1 / 250 + 1 )).$(( $1 % 250 + 1 ))"; }

LISTENERS=$(( (MAXN + 15) / 16 ))
log "starting $LISTENERS sshd listeners for $MAXN addresses on port $PORT"
: > "$WORK/known_hosts"
for ((k = 0; k < LISTENERS; k++)); do
    d=$WORK/sshd$k
    mkdir -p "$d"
    ssh-keygen -q -t ed25519 -N '' -C "fanout-host-$k" -f "$d/ssh_host_ed25519_key"
    hk=$(cut -d' ' -f1,2 "$d/ssh_host_ed25519_key.pub")
    {
        for ((j = 0; j < 16 && k * 16 + j < MAXN; j++)); do
            echo "ListenAddress $(addr $((k * 16 + j))):$PORT"
        done
        cat <<EOF
HostKey $d/ssh_host_ed25519_key
PidFile $d/sshd.pid
AuthorizedKeysFile $WORK/authorized_keys
StrictModes no
UsePAM no
UseDNS no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin no
AllowUsers $USER_NAME
MaxStartups 2000
MaxSessions 10
MaxAuthTries 10
LoginGraceTime 120
PrintMotd no
PrintLastLog no
LogLevel ERROR
EOF
    } > "$d/sshd_config"
    for ((j = 0; j < 16 && k * 16 + j < MAXN; j++)); do
        echo "[$(addr $((k * 16 + j)))]:$PORT $hk" >> "$WORK/known_hosts"
    done
    sh -c "$IN_CG" sh "$CG_SSHD" "$CG_PRIO" /usr/sbin/sshd -D -e -f "$d/sshd_config" \
        > /dev/null 2>> "$d/sshd.log" &
    PIDS+=($!)
done
for _ in $(seq 100); do
    up=$(ss -Hltn "sport = :$PORT" | wc -l)
    [ "$up" -ge "$MAXN" ] && break
    sleep 0.1
done
[ "$up" -ge "$MAXN" ] || die "only $up of $MAXN addresses listen on port $PORT (see $WORK/sshd*/sshd.log)"

# Hosts files per set: N (the first N hosts) and `check` (host 0 only, for the host key check).
write_set() { # name, count
    : > "$WORK/hosts_$1.txt"
    {
        echo "[all]"
        for ((i = 0; i < $2; i++)); do
            echo "$(addr $i):$PORT" >> "$WORK/hosts_$1.txt"
            echo "$(addr $i) ansible_port=$PORT"
        done
        echo "[all:vars]"
        echo "ansible_user=$USER_NAME"
        echo "ansible_ssh_private_key_file=$WORK/id_ed25519"
    } > "$WORK/inventory_$1.ini"
}
for n in "${NS[@]}"; do write_set "$n" "$n"; done
write_set check 1
# A known_hosts file where host 0 has some other key: every tool must refuse it.
ssh-keygen -q -t ed25519 -N '' -C impostor -f "$WORK/impostor_key"
{
    echo "[$(addr 0)]:$PORT $(cut -d' ' -f1,2 "$WORK/impostor_key.pub")"
    tail -n +2 "$WORK/known_hosts"
} > "$WORK/known_hosts_wrong"

# OpenSSH options (pssh, ansible, calibration) for a known_hosts file.
ssh_opts() {
    SSH_OPTS=(-o BatchMode=yes -o StrictHostKeyChecking=yes -o "UserKnownHostsFile=$1"
              -o GlobalKnownHostsFile=/dev/null -o IdentitiesOnly=yes
              -o "IdentityFile=$WORK/id_ed25519" -o ControlMaster=no -o ControlPath=none)
}
for kh in known_hosts known_hosts_wrong; do
    ssh_opts "$WORK/$kh"
    cat > "$WORK/ansible_$kh.cfg" <<EOF
[defaults]
host_key_checking = True
gathering = explicit
local_tmp = $WORK/ansible-tmp
retry_files_enabled = False
[ssh_connection]
ssh_args = ${SSH_OPTS[*]}
retries = 0
EOF
done
KH=$WORK/known_hosts
ssh_opts "$KH"

# --- measuring -------------------------------------------------------------------------------
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
TICK_NS=$(( 1000000000 / $(getconf CLK_TCK) ))

# Wait until no sshd session is left from the previous run.
wait_quiet() {
    for _ in $(seq 300); do
        [ "$(wc -l < "$CG_SSHD/cgroup.procs")" -le "$LISTENERS" ] && return 0
        sleep 0.1
    done
    log "warning: sshd sessions still open after 30 s"
}

# Wait (up to QUIET_WAIT seconds) until other processes leave the machine mostly idle: less
# than QUIET (fraction of all cores) busy over one second. Builds or other jobs running beside
# the benchmark would otherwise take CPU from sshd and the tools.
wait_idle() {
    [ "${QUIET_WAIT:-0}" -gt 0 ] || return 0
    local deadline=$(( $(date +%s) + QUIET_WAIT )) b0 b1 frac
    while :; do
        b0=$(busy_ticks); sleep 1; b1=$(busy_ticks)
        frac=$(awk -v a="$b0" -v b="$b1" -v c="$CORES" -v hz="$(getconf CLK_TCK)" \
            'BEGIN {printf "%.2f", (b - a) / hz / c}')
        awk -v f="$frac" -v q="${QUIET:-0.15}" 'BEGIN {exit !(f < q)}' && return 0
        if [ "$(date +%s)" -ge "$deadline" ]; then
            log "warning: the machine is still ${frac} busy; measuring anyway"
            return 0
        fi
        sleep 2
    done
}

# measure NAME OUTFILE CMD...: runs CMD in the client cgroup; sets M_WALL M_CLIENT M_SSHD
# M_OTHER (seconds) and M_RC.
measure() {
    local name=$1 out=$2
    shift 2
    wait_quiet
    wait_idle
    local c0 s0 b0 t0 t1 c1 s1 b1
    c0=$(cg_ns "$CG_CLIENT"); s0=$(cg_ns "$CG_SSHD"); b0=$(busy_ticks)
    t0=$(date +%s%N)
    set +e
    sh -c "$IN_CG" sh "$CG_CLIENT" "$CG_PRIO" timeout 3600 "$@" > "$out" 2> "$out.err"
    M_RC=$?
    set -e
    t1=$(date +%s%N)
    wait_quiet
    c1=$(cg_ns "$CG_CLIENT"); s1=$(cg_ns "$CG_SSHD"); b1=$(busy_ticks)
    M_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e9}')
    M_CLIENT=$(awk -v a="$c0" -v b="$c1" 'BEGIN {printf "%.3f", (b - a) / 1e9}')
    M_SSHD=$(awk -v a="$s0" -v b="$s1" 'BEGIN {printf "%.3f", (b - a) / 1e9}')
    M_OTHER=$(awk -v a="$b0" -v b="$b1" -v t="$TICK_NS" -v c="$M_CLIENT" -v s="$M_SSHD" \
        'BEGIN {o = (b - a) * t / 1e9 - c - s; if (o < 0) o = 0; printf "%.3f", o}')
    log "$name: wall ${M_WALL}s client ${M_CLIENT}s sshd ${M_SSHD}s other ${M_OTHER}s rc $M_RC"
}

field() { sed -n "s/.*[ ]$1=\([^ ]*\).*/\1/p" "$2" | head -1; }

CSV=$WORK/results.csv
echo "tool,n,rep,wall_s,client_cpu_s,sshd_cpu_s,other_cpu_s,ok,failed,rc,inner_wall_s,warm_wall_s,warm_client_cpu_s,rss_per_idle_conn_kib,rss_per_idle_conn_upper_kib,peak_rss_kib,setup_s" > "$CSV"

# Calibration: sshd CPU per connection with the OpenSSH client, one connection at a time, once
# with OpenSSH's default algorithms and once with the ones Orca negotiates (curve25519-sha256,
# aes128-gcm, ed25519). The floor uses the second: the least work a server does for `true`.
calibrate() { # name, extra ssh options...
    local name=$1
    shift
    {
        echo "set -e"
        for ((i = 0; i < CAL; i++)); do
            printf 'ssh'; printf ' %q' "${SSH_OPTS[@]}" "$@" -p "$PORT" "$USER_NAME@$(addr $i)" true; echo
        done
    } > "$WORK/$name.sh"
    log "calibrating ($name): $CAL sequential 'ssh host true'"
    measure "$name" "$WORK/$name.out" bash "$WORK/$name.sh"
    [ "$M_RC" = 0 ] || die "calibration failed: $(cat "$WORK/$name.out.err")"
    echo "$name,$CAL,1,$M_WALL,$M_CLIENT,$M_SSHD,$M_OTHER,$CAL,0,0,,,,,,," >> "$CSV"
}
CAL=$(( CALIBRATE < MAXN ? CALIBRATE : MAXN ))
calibrate calibration-openssh-defaults
calibrate calibration -o KexAlgorithms=curve25519-sha256 -o Ciphers=aes128-gcm@openssh.com \
    -o HostKeyAlgorithms=ssh-ed25519
SSHD_PER_CONN=$(awk -v s="$M_SSHD" -v n="$CAL" 'BEGIN {printf "%.6f", s / n}')
log "sshd CPU per connection: ${SSHD_PER_CONN}s"

# tool_run TOOL SET LABEL OUT [extra ssh_fanout flags]: runs TOOL on the hosts of SET with the
# known_hosts file $KH (measured); sets OK to the hosts that ran `true` with exit 0.
tool_run() {
    local tool=$1 set=$2 label=$3 out=$4
    shift 4
    case $tool in
        orca)
            measure "$label" "$out" "$ORCA" --hosts "$WORK/hosts_$set.txt" --user "$USER_NAME" \
                --key "$WORK/id_ed25519" --known-hosts "$KH" --concurrency "$FORKS" "$@" -- true
            OK=$(grep -c ' exit=0$' "$out" || true) ;;
        parallel-ssh)
            measure "$label" "$out" "$VENV/bin/python" "$HERE/pssh_native.py" \
                "$WORK/hosts_$set.txt" "$KH" "$WORK/id_ed25519" "$USER_NAME" "$FORKS" true
            OK=$(grep -c ' exit=0$' "$out" || true) ;;
        ansible)
            measure "$label" "$out" env ANSIBLE_CONFIG="$WORK/ansible_$(basename "$KH").cfg" \
                LANG=C.UTF-8 LC_ALL=C.UTF-8 "$VENV/bin/ansible" all -i "$WORK/inventory_$set.ini" \
                -m raw -a true -f "$FORKS" -o
            OK=$(grep -c '| CHANGED | rc=0 |' "$out" || true) ;;
        pssh)
            local popts=() j
            ssh_opts "$KH"
            for ((j = 0; j < ${#SSH_OPTS[@]}; j += 2)); do popts+=(-O "${SSH_OPTS[j+1]}"); done
            measure "$label" "$out" "$PSSH" -h "$WORK/hosts_$set.txt" -l "$USER_NAME" \
                -p "$FORKS" -t 600 "${popts[@]}" true
            OK=$(grep -c '\[SUCCESS\]' "$out" || true) ;;
        *) die "unknown tool $tool" ;;
    esac
}

# Every tool must refuse a host whose key differs from its known_hosts entry, and run on it
# with the right entry.
for tool in $TOOLS; do
    KH=$WORK/known_hosts_wrong
    tool_run "$tool" check "host key check: $tool, wrong key" "$WORK/check_${tool}_wrong"
    [ "$OK" = 0 ] || die "$tool ran a command on a host whose key is not the one in known_hosts"
    KH=$WORK/known_hosts
    tool_run "$tool" check "host key check: $tool, right key" "$WORK/check_${tool}_right"
    [ "$OK" = 1 ] || die "$tool failed on a host with the right key: see $WORK/check_${tool}_right*"
done
ssh_opts "$KH"
log "every tool refuses a changed host key and accepts the right one"

run_tool() {
    local tool=$1 n=$2 rep=$3 out=$WORK/out_${1}_${2}_${3}
    local inner="" warm="" warmcpu="" perconn="" upper="" peak="" setup=""
    case $tool in
        orca)
            tool_run orca "$n" "orca N=$n #$rep" "$out"
            inner=$(field wall_s "$out.err"); setup=$(field setup_s "$out.err") ;;
        orca-warm)
            tool_run orca "$n" "orca --warm N=$n #$rep" "$out" --warm
            inner=$(grep 'run=fresh' "$out.err" | sed -n 's/.* wall_s=\([^ ]*\).*/\1/p')
            warm=$(grep 'run=warm' "$out.err" | sed -n 's/.* wall_s=\([^ ]*\).*/\1/p')
            warmcpu=$(grep 'run=warm' "$out.err" | sed -n 's/.* cpu_s=\([^ ]*\).*/\1/p')
            perconn=$(field rss_per_idle_connection_kib "$out.err")
            upper=$(field rss_per_idle_connection_upper_kib "$out.err")
            peak=$(field peak_rss_kib "$out.err"); setup=$(field setup_s "$out.err")
            if grep -q 'run=warm.* failed=[1-9]' "$out.err"; then OK=0; fi ;;
        *) tool_run "$tool" "$n" "$tool N=$n #$rep" "$out" ;;
    esac
    echo "$tool,$n,$rep,$M_WALL,$M_CLIENT,$M_SSHD,$M_OTHER,$OK,$((n - OK)),$M_RC,$inner,$warm,$warmcpu,$perconn,$upper,$peak,$setup" >> "$CSV"
}

for n in "${NS[@]}"; do
    for ((rep = 1; rep <= REPS; rep++)); do
        for tool in $TOOLS; do
            run_tool "$tool" "$n" "$rep"
        done
        if [[ " $TOOLS " == *" orca "* ]]; then run_tool orca-warm "$n" "$rep"; fi
    done
done

"$VENV/bin/python" "$HERE/summarize.py" "$CSV" "$SSHD_PER_CONN" "$CORES" "$FORKS" > "$WORK/results.md" \
    || python3 "$HERE/summarize.py" "$CSV" "$SSHD_PER_CONN" "$CORES" "$FORKS" > "$WORK/results.md"
{
    echo
    echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, $(uname -sr)"
    echo "OpenSSH: $(/usr/sbin/sshd -V 2>&1 | head -1); tools: parallel-ssh $("$VENV/bin/pip" show parallel-ssh 2>/dev/null | awk '/^Version/ {print $2}'), ansible-core $("$VENV/bin/pip" show ansible-core 2>/dev/null | awk '/^Version/ {print $2}'), pssh $("$PSSH" --version 2>&1)"
    echo "Raw rows: $CSV"
} >> "$WORK/results.md"
cat "$WORK/results.md"
