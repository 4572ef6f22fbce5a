#!/usr/bin/env bash
# Kernel fast path against user-space relaying, across a veth pair, side by side in one run:
# ngmedia with `--fast-path=on`, ngmedia with `--fast-path=off`, and rtpengine `--table=-1`
# (its kernel module cannot be built here). The figure that counts is system-wide CPU per
# relayed packet on the engine's core, softirq included, which only an idle soaker sees
# (`cpusoak.py`); per-process CPU misses the kernel's work, which is all the fast path does.
#
# Topology: the engine in namespace ngm-bench-e (10.81.0.1 on `ve`), the generator (ngload)
# in ngm-bench-g (10.81.0.2 on `vg`). The engine and its receive processing are confined to
# CPU 0 (taskset, and RPS of `ve` to CPU 0); the generator and its receive processing to CPU 1
# (RPS of `vg`). Media enters the engine's namespace on `ve` and leaves on it again.
#
#   bench/fastpath-compare.sh              # RUNS below, 30 s each
#   RUNS="1000:10" SECONDS_=20 bench/fastpath-compare.sh
#   MODES="fast user" bench/fastpath-compare.sh        # without rtpengine
#
# RUNS lists calls:ptime pairs. The default holds the packet rate near 100k/s from 1,000 to
# 10,000 calls (ptime 20, 100, 180 ms: payloads up to 1,440 bytes, unfragmented on a 1,500
# MTU), which shows how the cost grows with the number of streams rather than with the rate
# (one generator core tops out near 125k packets/s).
#
# Results: target/bench/fastpath/<mode>-<calls>-p<ptime>.{json,soak.json,kernel,txt} and a
# table.
# Needs root (namespaces, BPF) and a release build (built here if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
RUNS=${RUNS:-"500:20 1000:20 5000:100 10000:180"}
SECONDS_=${SECONDS_:-30}
MODES=${MODES:-"fast user rtpengine"}
OUT=target/bench/fastpath
NS_E=ngm-bench-e
NS_G=ngm-bench-g
E_IP=10.81.0.1
G_IP=10.81.0.2
NG_PORT=22232
HTTP_PORT=22282
mkdir -p "$OUT"

# ENGINE_BIN picks another ngmedia binary (then nothing is built for it).
if [ -z "${ENGINE_BIN:-}" ]; then
    cargo build --release --bin ngmedia >/dev/null
    ENGINE_BIN=$PWD/target/release/ngmedia
fi
CARGO_TARGET_DIR=$PWD/target/ngload cargo build --release --manifest-path "$SHARED/loadgen/Cargo.toml" >/dev/null
NGLOAD=$PWD/target/ngload/release/ngload

cleanup() {
    [ -n "${EPID:-}" ] && kill "$EPID" 2>/dev/null && wait "$EPID" 2>/dev/null
    ip netns del "$NS_E" 2>/dev/null || true
    ip netns del "$NS_G" 2>/dev/null || true
}
trap cleanup EXIT
cleanup
ip netns add "$NS_E"
ip netns add "$NS_G"
ip -n "$NS_E" link add ve type veth peer name vg netns "$NS_G"
ip -n "$NS_E" addr add "$E_IP/24" dev ve
ip -n "$NS_G" addr add "$G_IP/24" dev vg
for ns in "$NS_E" "$NS_G"; do ip -n "$ns" link set lo up; done
ip -n "$NS_E" link set ve up
ip -n "$NS_G" link set vg up
# Receive processing (softirq) of each side on that side's core.
ip netns exec "$NS_E" sh -c 'echo 1 > /sys/class/net/ve/queues/rx-0/rps_cpus'
ip netns exec "$NS_G" sh -c 'echo 2 > /sys/class/net/vg/queues/rx-0/rps_cpus'

start_engine() {
    case "$1" in
    fast | user)
        local fp=on
        [ "$1" = user ] && fp=off
        ip netns exec "$NS_E" taskset -c 0 "$ENGINE_BIN" --config none --interface "$E_IP" \
            --listen-ng "$E_IP:$NG_PORT" --listen-http "127.0.0.1:$HTTP_PORT" --port-min 20000 \
            --port-max 60000 --delete-delay 0 --num-threads 1 --log-level warn --fast-path "$fp" &
        ;;
    rtpengine)
        ip netns exec "$NS_E" taskset -c 0 rtpengine --config-file=none --table=-1 \
            --interface="$E_IP" --listen-ng="$E_IP:$NG_PORT" --port-min=20000 --port-max=60000 \
            --foreground --log-stderr --log-level=4 --delete-delay=0 &
        ;;
    esac
    EPID=$!
    ip netns exec "$NS_G" python3 bench/ng-ping.py "$E_IP" "$NG_PORT" && return 0
    echo "engine $1 did not answer ping" >&2
    return 1
}

# Packets the kernel relayed, from ngmedia's metrics (0 for other engines).
kernel_packets() {
    ip netns exec "$NS_E" python3 - 127.0.0.1 "$HTTP_PORT" <<'PY' 2>/dev/null || echo 0
import sys, urllib.request
try:
    text = urllib.request.urlopen("http://%s:%s/metrics" % (sys.argv[1], sys.argv[2]), timeout=2).read().decode()
except OSError:
    print(0); sys.exit()
print(sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith("ngmedia_fast_path_packets_total")))
PY
}

# Steady state only: the soak window opens once setup is done and the learning window (3 s)
# has let the fast path take the streams, and closes before the media phase ends, so call
# setup and teardown are not in the figure. Packets in the window = the offered rate (calls x
# 2 directions x 1000/ptime) x its length, which holds while loss is 0 (the table shows it).
WINDOW=$((SECONDS_ - 8))
[ "$WINDOW" -ge 5 ] || { echo "SECONDS_ must be at least 13" >&2; exit 2; }
# TABLE_ONLY=1: print the table of the results already in $OUT, run nothing.
[ "${TABLE_ONLY:-0}" = 1 ] && RUN_PAIRS="" || RUN_PAIRS=$RUNS
for pair in $RUN_PAIRS; do
    calls=${pair%:*}
    PTIME=${pair#*:}
    for mode in $MODES; do
        run="$mode-$calls-p$PTIME"
        start_engine "$mode"
        ip netns exec "$NS_G" taskset -c 1 "$NGLOAD" --ng "$E_IP:$NG_PORT" --local-addr "$G_IP" \
            --local-ports 20000-60000 --calls "$calls" --seconds "$SECONDS_" --ptime "$PTIME" \
            --pid "$EPID" --max-calls 10000 --json "$OUT/$run.json" >"$OUT/$run.txt" 2>&1 &
        GPID=$!
        for _ in $(seq 600); do
            grep -q '^setup:' "$OUT/$run.txt" 2>/dev/null && break
            kill -0 "$GPID" 2>/dev/null || break
            sleep 0.2
        done
        sleep 5
        k0=$(kernel_packets)
        t0=$(date +%s.%N)
        python3 "$SHARED/loadgen/cpusoak.py" --cpus 0,1 --json "$OUT/$run.soak.json" -- sleep "$WINDOW" >/dev/null
        k1=$(kernel_packets)
        t1=$(date +%s.%N)
        wait "$GPID" || true
        # Kernel-relayed packets between the two readings, and how long that was.
        echo "$k0 $k1 $t0 $t1" >"$OUT/$run.kernel"
        kill "$EPID" 2>/dev/null || true
        wait "$EPID" 2>/dev/null || true
        EPID=
    done
done

python3 - "$OUT" "$MODES" $RUNS <<'PY'
import json, os, sys
out, modes, runs = sys.argv[1], sys.argv[2].split(), [r.split(":") for r in sys.argv[3:]]
names = {"fast": "ngmedia fast path", "user": "ngmedia user space", "rtpengine": "rtpengine --table=-1"}
print("| engine | calls | ptime ms | relayed pps | loss % | kernel-relayed % | CPU 0 busy (% of core) | CPU 0 µs/pkt | engine process µs/pkt |")
print("|---|---|---|---|---|---|---|---|---|")
for c, ptime in runs:
    for m in modes:
        run = "%s-%s-p%s" % (m, c, ptime)
        try:
            d = json.load(open(os.path.join(out, run + ".json")))
            soak = json.load(open(os.path.join(out, run + ".soak.json")))
        except (OSError, ValueError):
            print("| %s | %s | %s | (no result: see %s.txt) | | | | | |" % (names[m], c, ptime, run))
            continue
        P, E = d["packets"], d.get("engine_proc") or {}
        # The calls that were set up send, not the ones asked for.
        pps = d["calls_ok"] * 2 * 1000 / int(ptime)
        cpu0 = soak["cpus"]["cpu0"]
        pkts = pps * cpu0["window_s"]
        k0, k1, t0, t1 = map(float, open(os.path.join(out, run + ".kernel")).read().split())
        kernel_share = (k1 - k0) / (pps * (t1 - t0))
        print("| %s | %s/%s | %s | %.0f | %.3f | %.1f | %.1f %% | %.2f | %s |" % (
            names[m], d["calls_ok"], c, ptime, pps, P["loss_pct"], 100.0 * kernel_share,
            cpu0["busy_pct"], 1e6 * cpu0["busy_s"] / pkts,
            E.get("cpu_us_per_relayed_packet")))
PY
