#!/usr/bin/env bash
# Plain-relay CPU per packet: ngmedia against rtpengine (userspace) in one run, same machine,
# same generator. Each engine is started fresh per run, pinned to CPU 0; the generator runs on
# CPU 1. Results: target/bench/<engine>-<calls>.json and a table on stdout.
#
#   bench/relay-compare.sh                 # loadbench.py, 500 and 1000 calls, 20 s each
#   CALLS="500" SECONDS_=10 bench/relay-compare.sh
#   GEN=ngload bench/relay-compare.sh      # the Rust generator from ../shared/loadgen
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
CALLS=${CALLS:-"500 1000"}
SECONDS_=${SECONDS_:-20}
GEN=${GEN:-loadbench}
ENGINES=${ENGINES:-"ngmedia rtpengine"}
OUT=target/bench
mkdir -p "$OUT"

cargo build --release --bin ngmedia >/dev/null
if [ "$GEN" = ngload ]; then
    CARGO_TARGET_DIR=$PWD/target/ngload cargo build --release --manifest-path "$SHARED/loadgen/Cargo.toml" >/dev/null
    gen_cmd=(target/ngload/release/ngload)
else
    gen_cmd=(python3 "$SHARED/harness/loadbench.py")
fi

start_engine() {
    case "$1" in
    ngmedia)
        taskset -c 0 target/release/ngmedia --interface 127.0.0.1 --listen-ng 127.0.0.1:22231 \
            --listen-http 127.0.0.1:22281 --port-min 20000 --port-max 24999 --delete-delay 0 --num-threads 1 --log-level warn &
        ;;
    rtpengine)
        taskset -c 0 rtpengine --config-file=none --table=-1 --interface=127.0.0.1 \
            --listen-ng=127.0.0.1:22231 --port-min=20000 --port-max=24999 --foreground \
            --log-stderr --log-level=4 --delete-delay=0 &
        ;;
    esac
    EPID=$!
    python3 bench/ng-ping.py 127.0.0.1 22231 && return 0
    echo "engine $1 did not answer ping" >&2
    return 1
}

for calls in $CALLS; do
    for engine in $ENGINES; do
        start_engine "$engine"
        taskset -c 1 "${gen_cmd[@]}" --ng 127.0.0.1:22231 --local-ports 25000-29999 --calls "$calls" \
            --seconds "$SECONDS_" --pid "$EPID" --json "$OUT/$engine-$calls.json" >"$OUT/$engine-$calls.txt" 2>&1 || true
        kill "$EPID" 2>/dev/null || true
        wait "$EPID" 2>/dev/null || true
    done
done

python3 - "$OUT" $CALLS <<'PY'
import json, sys, os
out, calls = sys.argv[1], sys.argv[2:]
print("| engine | calls | pkts sent / recv | loss % | latency p50 / p99 ms | engine CPU s (% core) | CPU µs/pkt | generator pps (%) |")
print("|---|---|---|---|---|---|---|---|")
for c in calls:
    for e in ("ngmedia", "rtpengine"):
        p = os.path.join(out, "%s-%s.json" % (e, c))
        if not os.path.exists(p):
            continue
        d = json.load(open(p))
        P, L, E, G = d["packets"], d.get("latency_one_way") or {}, d.get("engine_proc") or {}, d["generator"]
        print("| %s | %s | %s / %s | %s | %s / %s | %s (%s%%) | %s | %s (%s%%) |" % (
            e, c, P["sent"], P["received"], P["loss_pct"], L.get("p50_ms"), L.get("p99_ms"),
            E.get("cpu_s_media"), E.get("cpu_pct_media"), E.get("cpu_us_per_relayed_packet"),
            G["achieved_send_pps"], G["achieved_pct"]))
PY
