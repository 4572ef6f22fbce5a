#!/usr/bin/env bash
# Redis high availability costs, on loopback only:
#   (a) signalling rate: loadbench.py's sequential offer/answer pairs per second against a
#       fresh ngmedia without and with --redis (a private redis-server run by this script);
#   (b) recovery: RECOVER_CALLS calls set up (with a little media so peers are latched), the
#       engine killed with SIGKILL and started again with the same flags; reports the time
#       from exec to its `restored N calls in X ms` log line, and X itself;
#   (c) takeover: the same calls on an active engine with a --standby beside it (heartbeat
#       TTL 1 s); the active killed with SIGKILL; reports the time from the kill to the
#       standby's `took over N calls of instance ... in X ms` line, and X itself.
#
#   bench/ha-bench.sh                          # debug build if there is no release one
#   NGMEDIA_BIN=target/release/ngmedia bench/ha-bench.sh
#   RATE_CALLS=300 RECOVER_CALLS=1000 bench/ha-bench.sh
#   SKIP_RATE=1 bench/ha-bench.sh              # recovery and takeover only
#
# Needs /usr/bin/redis-server and redis-cli (apt-get install redis-server) and python3.
# Media ports PORT_MIN..PORT_MAX (default 10000-14999, 4 per call) must be free. Every
# process it starts is killed on exit; the logs stay in $OUT (default target/bench/ha).
set -euo pipefail
cd "$(dirname "$0")/.."

SHARED=${SHARED:-/work/shared}
LOADBENCH=${LOADBENCH:-$SHARED/harness/loadbench.py}
RATE_CALLS=${RATE_CALLS:-500}
RECOVER_CALLS=${RECOVER_CALLS:-1000}
PORT_MIN=${PORT_MIN:-10000}
PORT_MAX=${PORT_MAX:-14999}
SYNC_INTERVAL=${SYNC_INTERVAL:-1}
SKIP_RATE=${SKIP_RATE:-0}
SKIP_RECOVERY=${SKIP_RECOVERY:-0}
SKIP_TAKEOVER=${SKIP_TAKEOVER:-0}
OUT=${OUT:-target/bench/ha}
INSTANCE=habench
PREFIX=habench
# Upper bounds for every wait (seconds).
START_LIMIT=15
RESTORE_LIMIT=60

if [ -n "${NGMEDIA_BIN:-}" ]; then
    BIN=$NGMEDIA_BIN
elif [ -x target/release/ngmedia ]; then
    BIN=target/release/ngmedia
else
    BIN=target/debug/ngmedia
fi
[ -x "$BIN" ] || { echo "ngmedia binary $BIN not found: cargo build --release --bin ngmedia" >&2; exit 1; }
[ -x /usr/bin/redis-server ] || { echo "redis-server not installed (apt-get install redis-server)" >&2; exit 1; }
command -v redis-cli >/dev/null || { echo "redis-cli not installed (apt-get install redis-server)" >&2; exit 1; }
[ -f "$LOADBENCH" ] || { echo "loadbench.py not found at $LOADBENCH (set SHARED or LOADBENCH)" >&2; exit 1; }
need_ports=$((RECOVER_CALLS * 4))
[ $((PORT_MAX - PORT_MIN + 1)) -ge "$need_ports" ] || { echo "PORT_MIN..PORT_MAX too small for $RECOVER_CALLS calls ($need_ports ports)" >&2; exit 1; }

mkdir -p "$OUT"
TMP=$(mktemp -d /tmp/ngmedia-ha-bench.XXXXXX)
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { date +%s%3N; }

free_port() { # $1: tcp|udp
    python3 - "$1" <<'EOF'
import socket, sys
kind = socket.SOCK_STREAM if sys.argv[1] == "tcp" else socket.SOCK_DGRAM
s = socket.socket(socket.AF_INET, kind)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
EOF
}

# ng ping; exit status 0 when the engine answered pong.
ng_ping() { # $1: host:port
    python3 - "$1" <<'EOF'
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.2)
try:
    s.sendto(b"hb1 d7:command4:pinge", (host, int(port)))
    data = s.recv(65536)
except OSError:
    sys.exit(1)
sys.exit(0 if data.startswith(b"hb1 ") and b"pong" in data else 1)
EOF
}

REDIS_PORT=
REDIS_PID=
start_redis() {
    REDIS_PORT=$(free_port tcp)
    /usr/bin/redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$TMP" --daemonize no >"$OUT/redis.log" 2>&1 &
    REDIS_PID=$!
    PIDS+=("$REDIS_PID")
    local i
    for i in $(seq 250); do
        if [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; then
            return 0
        fi
        sleep 0.02
    done
    echo "redis-server did not answer PING within 5 s" >&2
    exit 1
}

rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }

NG=
HTTP=
EPID=
EXEC_MS=
# start_engine LOGFILE [extra flags...]: start ngmedia, wait for ping; sets EPID, EXEC_MS.
start_engine() {
    local log=$1
    shift
    EXEC_MS=$(now_ms)
    "$BIN" --config none --interface 127.0.0.1 --listen-ng="$NG" --listen-http="$HTTP" \
        --port-min="$PORT_MIN" --port-max="$PORT_MAX" --log-level info "$@" \
        </dev/null >/dev/null 2>"$log" &
    EPID=$!
    PIDS+=("$EPID")
    local i
    for i in $(seq $((START_LIMIT * 20))); do
        if ng_ping "$NG"; then
            return 0
        fi
        if ! kill -0 "$EPID" 2>/dev/null; then
            echo "ngmedia exited during startup; log:" >&2
            tail -20 "$log" >&2
            exit 1
        fi
        sleep 0.05
    done
    echo "ngmedia did not answer ping within $START_LIMIT s" >&2
    exit 1
}

kill9_engine() {
    kill -9 "$EPID" 2>/dev/null || true
    wait "$EPID" 2>/dev/null || true
}


stop_engine() {
    kill -TERM "$EPID" 2>/dev/null || true
    local i
    for i in $(seq 100); do
        kill -0 "$EPID" 2>/dev/null || break
        sleep 0.05
    done
    kill9_engine
}

# loadbench's JSON summary line -> "calls/s cpu_us_per_setup_call"
setup_figures() { # $1: loadbench output file
    python3 - "$1" <<'EOF'
import json, sys
last = [l for l in open(sys.argv[1]) if l.startswith("{")][-1]
s = json.loads(last)
eng = s.get("engine_proc") or {}
cpu = eng.get("cpu_us_per_setup_call")
print(s["setup"]["calls_per_s"], cpu if cpu is not None else "n/a")
EOF
}

NG=127.0.0.1:$(free_port udp)
HTTP=127.0.0.1:$(free_port tcp)
start_redis
REDIS_FLAGS=(--redis "127.0.0.1:$REDIS_PORT/0" --redis-prefix "$PREFIX" --instance-id "$INSTANCE"
    --redis-sync-interval "$SYNC_INTERVAL")

echo "ngmedia: $BIN; redis-server on 127.0.0.1:$REDIS_PORT; ng $NG; media $PORT_MIN-$PORT_MAX"

# ---------------------------------------------------------------- (a) signalling rate
rate_plain=n/a rate_redis=n/a cpu_plain=n/a cpu_redis=n/a
if [ "$SKIP_RATE" != 1 ]; then
    for mode in plain redis; do
        if [ "$mode" = redis ]; then
            start_engine "$OUT/rate-$mode.log" "${REDIS_FLAGS[@]}"
        else
            start_engine "$OUT/rate-$mode.log"
        fi
        echo "== (a) $RATE_CALLS offer/answer pairs, engine $mode"
        python3 "$LOADBENCH" --ng "$NG" --calls "$RATE_CALLS" --seconds 0.2 --drain 0.2 \
            --pid "$EPID" --json "$OUT/rate-$mode.json" >"$OUT/rate-$mode.out" 2>&1 ||
            { echo "loadbench failed:" >&2; tail -20 "$OUT/rate-$mode.out" >&2; exit 1; }
        grep '^setup:' "$OUT/rate-$mode.out" || true
        read -r rate cpu < <(setup_figures "$OUT/rate-$mode.out")
        if [ "$mode" = plain ]; then rate_plain=$rate cpu_plain=$cpu; else rate_redis=$rate cpu_redis=$cpu; fi
        stop_engine
    done
    rcli flushall >/dev/null
fi

# ---------------------------------------------------------------- (b) recovery
exec_to_log_ms=n/a restore_ms=n/a restored_n=n/a
if [ "$SKIP_RECOVERY" != 1 ]; then
    echo "== (b) recovery of $RECOVER_CALLS calls"
    start_engine "$OUT/recover-before.log" "${REDIS_FLAGS[@]}"
    python3 "$LOADBENCH" --ng "$NG" --calls "$RECOVER_CALLS" --seconds 0.5 --drain 0.2 \
        --keep-calls >"$OUT/recover-setup.out" 2>&1 ||
        { echo "loadbench failed:" >&2; tail -20 "$OUT/recover-setup.out" >&2; exit 1; }
    grep '^setup:' "$OUT/recover-setup.out" || true
    # Every call in Redis, then one more sync period so the live figures are there too.
    stored=0
    for i in $(seq 200); do
        stored=$(rcli scard "$PREFIX:calls:$INSTANCE" 2>/dev/null || echo 0)
        [ "$stored" -ge "$RECOVER_CALLS" ] && break
        sleep 0.05
    done
    echo "calls stored in redis: $stored"
    [ "$stored" -ge "$RECOVER_CALLS" ] || { echo "not every call reached redis" >&2; exit 1; }
    sleep $((SYNC_INTERVAL * 2))

    kill9_engine
    log=$OUT/recover-after.log
    start_engine "$log" "${REDIS_FLAGS[@]}"
    line=
    for i in $(seq $((RESTORE_LIMIT * 200))); do
        line=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -m1 -E 'restored [0-9]+ calls? in' || true)
        [ -n "$line" ] && break
        sleep 0.005
    done
    seen_ms=$(now_ms)
    [ -n "$line" ] || { echo "no 'restored N calls' line within $RESTORE_LIMIT s; log:" >&2; tail -20 "$log" >&2; exit 1; }
    exec_to_log_ms=$((seen_ms - EXEC_MS))
    restored_n=$(sed -E 's/.*restored ([0-9]+) calls? in.*/\1/' <<<"$line")
    restore_ms=$(sed -E 's/.*restored [0-9]+ calls? in ([0-9.]+) ?ms.*/\1/' <<<"$line")
    echo "log: $line"
    listed=$(python3 - "$NG" <<'EOF'
import socket, sys

def bdecode(b, i=0):
    c = b[i:i+1]
    if c == b"i":
        j = b.index(b"e", i)
        return int(b[i+1:j]), j + 1
    if c in (b"l", b"d"):
        items, i = [], i + 1
        while b[i:i+1] != b"e":
            v, i = bdecode(b, i)
            items.append(v)
        if c == b"l":
            return items, i + 1
        return dict(zip(items[::2], items[1::2])), i + 1
    j = b.index(b":", i)
    n = int(b[i:j])
    return b[j+1:j+1+n], j + 1 + n

host, port = sys.argv[1].rsplit(":", 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(b"hb2 d7:command4:list5:limiti100000ee", (host, int(port)))
try:
    data = s.recv(1 << 20)
    reply, _ = bdecode(data[data.index(b" ") + 1:])
    print(len(reply.get(b"calls", [])))
except (OSError, ValueError, AttributeError):
    print("n/a")
EOF
)
    echo "engine lists $listed calls after the restart"
    stop_engine
fi

# ---------------------------------------------------------------- (c) standby takeover
kill_to_log_ms=n/a takeover_ms=n/a taken_n=n/a
if [ "$SKIP_TAKEOVER" != 1 ]; then
    echo "== (c) standby takeover of $RECOVER_CALLS calls (heartbeat TTL 1 s)"
    rcli flushall >/dev/null
    TTL_FLAGS=(--redis-heartbeat-ttl 1)
    # The standby first, on its own ng/HTTP ports and the same media range.
    ACTIVE_NG=$NG ACTIVE_HTTP=$HTTP
    NG=127.0.0.1:$(free_port udp) HTTP=127.0.0.1:$(free_port tcp)
    slog=$OUT/takeover-standby.log
    start_engine "$slog" --redis "127.0.0.1:$REDIS_PORT/0" --redis-prefix "$PREFIX" \
        --instance-id "$INSTANCE-standby" --standby "${TTL_FLAGS[@]}"
    SPID=$EPID
    NG=$ACTIVE_NG HTTP=$ACTIVE_HTTP
    start_engine "$OUT/takeover-active.log" "${REDIS_FLAGS[@]}" "${TTL_FLAGS[@]}"
    python3 "$LOADBENCH" --ng "$NG" --calls "$RECOVER_CALLS" --seconds 0.5 --drain 0.2 \
        --keep-calls >"$OUT/takeover-setup.out" 2>&1 ||
        { echo "loadbench failed:" >&2; tail -20 "$OUT/takeover-setup.out" >&2; exit 1; }
    for i in $(seq 200); do
        stored=$(rcli scard "$PREFIX:calls:$INSTANCE" 2>/dev/null || echo 0)
        [ "$stored" -ge "$RECOVER_CALLS" ] && break
        sleep 0.05
    done
    sleep $((SYNC_INTERVAL * 2))
    killed_ms=$(now_ms)
    kill9_engine
    line=
    for i in $(seq $((RESTORE_LIMIT * 200))); do
        line=$(sed 's/\x1b\[[0-9;]*m//g' "$slog" | grep -m1 -E 'took over [0-9]+ calls? of instance' || true)
        [ -n "$line" ] && break
        sleep 0.005
    done
    seen_ms=$(now_ms)
    [ -n "$line" ] || { echo "no takeover line within $RESTORE_LIMIT s; log:" >&2; tail -20 "$slog" >&2; exit 1; }
    kill_to_log_ms=$((seen_ms - killed_ms))
    taken_n=$(sed -E 's/.*took over ([0-9]+) calls? of instance.*/\1/' <<<"$line")
    takeover_ms=$(sed -E 's/.* in ([0-9.]+) ?ms.*/\1/' <<<"$line")
    echo "log: $line"
    EPID=$SPID
    stop_engine
fi

echo
echo "==== summary"
printf '(a) offer/answer pairs per second: without redis %s, with redis %s (engine CPU us per call: %s / %s)\n' \
    "$rate_plain" "$rate_redis" "$cpu_plain" "$cpu_redis"
printf '(b) %s calls: exec -> "restored" log line %s ms; engine reports restored %s calls in %s ms\n' \
    "$RECOVER_CALLS" "$exec_to_log_ms" "$restored_n" "$restore_ms"
printf '(c) %s calls: kill -9 of the active -> standby "took over" log line %s ms; standby reports %s calls in %s ms\n' \
    "$RECOVER_CALLS" "$kill_to_log_ms" "$taken_n" "$takeover_ms"
