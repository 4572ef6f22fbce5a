#!/usr/bin/env bash
# Transcoded calls per core: ngmedia against rtpengine (userspace, --table=-1) in one run, same
# machine, same generator. Each engine is started fresh per point, pinned to CPU 0 (ngmedia with
# one media thread); loadbench.py runs on CPU 1 with --transcode-to. Call counts rise per
# engine until its loss reaches 0.1 % (higher counts are skipped for that engine); engines
# alternate at each count so both see the same background load. Loss here does not count the
# last frame each transcoder still holds at hang-up (rtpengine always loses exactly one packet
# per stream that way, 0.13 % of a 15 s call).
# Results: target/bench/tc-<target>-<engine>-<calls>.json and a table on stdout.
#
# With CALLER set, the generator is `srtpload --mode transcode` (tests crate, release build:
# a debug build falls behind past ~400 G.711 calls): the caller offers CALLER, the callee answers TARGET, and both send
# the speech fixture in their codec (any of PCMU PCMA G722 AMR AMR-WB opus), so paths whose
# caller is not G.711 can be measured. Results then go to tc-<caller>-<target>-....
#
#   bench/transcode-load.sh                                  # opus: 25 50 100 200 400
#   TARGET=PCMA CALLS="200 500 1000" bench/transcode-load.sh
#   SECONDS_=10 ENGINES=ngmedia bench/transcode-load.sh
#   CALLER=PCMA TARGET=G722 CALLS="100 200 400" bench/transcode-load.sh
#   CALLER=AMR-WB TARGET=opus ENGINES=ngmedia bench/transcode-load.sh
#   NGMEDIA=/tmp/ngmedia-before ENGINES=ngmedia ... bench/transcode-load.sh   # another build
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-/work/shared}
TARGET=${TARGET:-opus}
CALLER=${CALLER:-}
CALLS=${CALLS:-"25 50 100 200 400"}
SECONDS_=${SECONDS_:-15}
ENGINES=${ENGINES:-"ngmedia rtpengine"}
NG_PORT=${NG_PORT:-22241}
# Media and generator ports away from the 20000-30000 range test daemons on this machine use.
PORT_MIN=${PORT_MIN:-40000}
PORT_MAX=${PORT_MAX:-44999}
GEN_PORTS=${GEN_PORTS:-45000-49999}
HTTP_PORT=${HTTP_PORT:-22291}
OUT=target/bench
NGMEDIA=${NGMEDIA:-target/release/ngmedia}
mkdir -p "$OUT"
[ -x "$NGMEDIA" ] || cargo build --release --bin ngmedia >/dev/null
TAG=$TARGET
if [ -n "$CALLER" ]; then
    TAG=$CALLER-$TARGET
    cargo build -q --release -p ngmedia-tests --bin srtpload
fi

# One run of the generator on CPU 1; the summary JSON in $2.
generate() {
    local calls=$1 json=$2
    if [ -n "$CALLER" ]; then
        # srtpload's last line is its JSON summary.
        taskset -c 1 target/release/srtpload --ng 127.0.0.1:$NG_PORT --local-ports $GEN_PORTS \
            --calls "$calls" --seconds "$SECONDS_" --pid "$EPID" --mode transcode \
            --caller "$CALLER" --callee "$TARGET" >"${json%.json}.txt" 2>&1 || true
        tail -n 1 "${json%.json}.txt" | grep '^{' >"$json" || echo '{}' >"$json"
    else
        taskset -c 1 python3 "$SHARED/harness/loadbench.py" --ng 127.0.0.1:$NG_PORT \
            --local-ports $GEN_PORTS --calls "$calls" --transcode-to "$TARGET" \
            --seconds "$SECONDS_" --pid "$EPID" --json "$json" >"${json%.json}.txt" 2>&1 || true
    fi
}

start_engine() {
    case "$1" in
    ngmedia)
        taskset -c 0 "$NGMEDIA" --interface 127.0.0.1 --listen-ng 127.0.0.1:$NG_PORT \
            --listen-http 127.0.0.1:$HTTP_PORT --port-min $PORT_MIN --port-max $PORT_MAX --delete-delay 0 \
            --num-threads 1 --log-level warn &
        ;;
    rtpengine)
        taskset -c 0 rtpengine --config-file=none --table=-1 --interface=127.0.0.1 \
            --listen-ng=127.0.0.1:$NG_PORT --port-min=$PORT_MIN --port-max=$PORT_MAX --foreground \
            --log-stderr --log-level=4 --delete-delay=0 &
        ;;
    esac
    EPID=$!
    python3 bench/ng-ping.py 127.0.0.1 "$NG_PORT" && return 0
    echo "engine $1 did not answer ping" >&2
    return 1
}

declare -A saturated=()
for calls in $CALLS; do
    for engine in $ENGINES; do
        [ -n "${saturated[$engine]:-}" ] && continue
        json="$OUT/tc-$TAG-$engine-$calls.json"
        # A point with loss is run once more: on a shared machine a burst of other work on
        # CPU 0 can cost packets that the engine's own load would not.
        for attempt in 1 2; do
            echo "$(date +%T) $engine $calls calls ${CALLER:-PCMU} -> $TARGET (try $attempt), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
            start_engine "$engine"
            generate "$calls" "$json"
            kill "$EPID" 2>/dev/null || true
            wait "$EPID" 2>/dev/null || true
            cut -d' ' -f1-3 /proc/loadavg >"${json%.json}.load"
            python3 - "$json" <<'PY' && break
import json, sys
d = json.load(open(sys.argv[1]))
if "packets" not in d:  # srtpload: no summary means setup failed
    d = {"packets": d, "calls_ok": d.get("calls", 0), "calls_requested": d.get("calls", 1)}
P = d["packets"]
# A transcoder holds back at most one frame per stream (rtpengine's ffmpeg queue at hang-up,
# ngmedia's resampler start next to G.722): up to one packet per stream is not loss.
lost = max(0, P.get("sent", 0) - P.get("received", 0) - 2 * d["calls_ok"])
sys.exit(0 if d["calls_ok"] == d["calls_requested"] and 100.0 * lost / max(1, P.get("sent", 0)) < 0.1 else 1)
PY
            [ "$attempt" = 2 ] && saturated[$engine]=1
        done
    done
done

python3 - "$OUT" "$TAG" $CALLS <<'PY'
import json, sys, os
out, target, calls = sys.argv[1], sys.argv[2], sys.argv[3:]
print("| engine | calls | → | pkts sent / recv | loss % | loss % beyond 1 pkt/stream | engine CPU (% core) | CPU µs/pkt | generator pps (% of target, or late sends) | load avg |")
print("|---|---|---|---|---|---|---|---|---|---|")
for c in calls:
    for e in ("ngmedia", "rtpengine"):
        p = os.path.join(out, "tc-%s-%s-%s.json" % (target, e, c))
        if not os.path.exists(p):
            continue
        d = json.load(open(p))
        if "packets" not in d:  # srtpload's summary
            if "sent" not in d:
                print("| %s | %s | %s | setup failed | | | | | | |" % (e, c, target))
                continue
            secs = d["seconds"] + 1.0
            cpu = d.get("engine_cpu_s") or 0
            d = {"packets": {"sent": d["sent"], "received": d["received"],
                             "loss_pct": round(d["loss_pct"], 3)},
                 "calls_ok": d["calls"], "transcode_to": target,
                 "engine_proc": {"cpu_s_media": round(cpu, 2), "cpu_pct_media": round(100 * cpu / secs, 1),
                                 "cpu_us_per_relayed_packet": round(d.get("engine_us_per_pkt") or 0, 1)},
                 "generator": {"achieved_send_pps": round(d["sent"] / d["seconds"]),
                               "achieved_pct": "%d sends > 2 ms late" % d["late_sends"]}}
        P, E, G = d["packets"], d.get("engine_proc") or {}, d["generator"]
        pace = G["achieved_pct"] if isinstance(G["achieved_pct"], str) else "%s%%" % G["achieved_pct"]
        load = open(p[:-5] + ".load").read().split()[0] if os.path.exists(p[:-5] + ".load") else "?"
        adj = 100.0 * max(0, P["sent"] - P["received"] - 2 * d["calls_ok"]) / P["sent"]
        print("| %s | %s | %s | %s / %s | %s | %.3f | %s s (%s%%) | %s | %s (%s) | %s |" % (
            e, c, d.get("transcode_to"), P["sent"], P["received"], P["loss_pct"], adj,
            E.get("cpu_s_media"), E.get("cpu_pct_media"), E.get("cpu_us_per_relayed_packet"),
            G["achieved_send_pps"], pace, load))
PY
