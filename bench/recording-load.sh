#!/usr/bin/env bash
# CPU and disk cost of call recording: loadbench.py's calls through a release ngmedia pinned
# to CPU 0 with one media worker, once plain and once with every call recorded (each offer
# carries `record call: yes`, see bench/loadbench_recorded.py). The generator runs on CPU 1.
# Reports loss (the recorder must not cost relayed packets), engine CPU µs per relayed
# packet in both runs, and what the recorder wrote (bytes from /metrics and on disk, MB/s).
#
#   bench/recording-load.sh                      # 200 calls, 20 s of media
#   CALLS=100 SECONDS_=10 bench/recording-load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-/work/shared}
CALLS=${CALLS:-200}
SECONDS_=${SECONDS_:-20}
FORMAT=${FORMAT:-wav}
NG_PORT=${NG_PORT:-22233}
HTTP_PORT=${HTTP_PORT:-22283}
OUT=target/bench
mkdir -p "$OUT"

cargo build --release --bin ngmedia >/dev/null

ping_engine() {
    for _ in $(seq 50); do
        python3 - "$NG_PORT" <<'PY' && return 0
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.1)
try:
    s.sendto(b"p d7:command4:pinge", ("127.0.0.1", int(sys.argv[1]))); s.recvfrom(100)
except OSError:
    sys.exit(1)
PY
        sleep 0.1
    done
    echo "ngmedia did not answer ping" >&2
    return 1
}

for mode in plain recorded; do
    dir=$(mktemp -d /tmp/ngmedia-recbench.XXXXXX)
    taskset -c 0 target/release/ngmedia --interface 127.0.0.1 --listen-ng "127.0.0.1:$NG_PORT" \
        --listen-http "127.0.0.1:$HTTP_PORT" --port-min 20000 --port-max 24999 --delete-delay 0 \
        --num-threads 1 --log-level warn --recording-dir "$dir" --recording-format "$FORMAT" &
    EPID=$!
    ping_engine
    if [ "$mode" = recorded ]; then
        gen=(python3 bench/loadbench_recorded.py)
    else
        gen=(python3 "$SHARED/harness/loadbench.py")
    fi
    taskset -c 1 "${gen[@]}" --ng "127.0.0.1:$NG_PORT" --local-ports 25000-29999 --calls "$CALLS" \
        --seconds "$SECONDS_" --pid "$EPID" --json "$OUT/rec-$mode-$CALLS.json" >"$OUT/rec-$mode-$CALLS.txt" 2>&1 || true
    # Deleted calls close their recordings; give the recorder its grace period.
    sleep 1
    python3 - "$HTTP_PORT" "$dir" "$OUT/rec-$mode-$CALLS.metrics.json" <<'PY'
import json, os, sys, urllib.request
port, folder, out = sys.argv[1:]
text = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % port, timeout=5).read().decode()
m = {}
for line in text.splitlines():
    if line.startswith("ngmedia_recording") or line.startswith("ngmedia_packet_drops_total{reason=\"tap_full\"}"):
        k, v = line.rsplit(" ", 1)
        m[k] = float(v)
m["disk_bytes"] = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
m["files"] = len(os.listdir(folder))
json.dump(m, open(out, "w"))
PY
    kill -TERM "$EPID" 2>/dev/null || true
    wait "$EPID" 2>/dev/null || true
    rm -rf "$dir"
done

python3 - "$OUT" "$CALLS" "$SECONDS_" <<'PY'
import json, os, sys
out, calls, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
print("| run | calls | pkts sent / recv | loss % | engine CPU s (% core) | CPU µs/pkt | recorder written MB (MB/s) | on disk MB | files | tap_full drops |")
print("|---|---|---|---|---|---|---|---|---|---|")
for mode in ("plain", "recorded"):
    p = os.path.join(out, "rec-%s-%s.json" % (mode, calls))
    if not os.path.exists(p):
        print("| %s | %s | no result (see %s) |" % (mode, calls, p.replace(".json", ".txt")))
        continue
    d = json.load(open(p))
    m = json.load(open(p.replace(".json", ".metrics.json")))
    P, E = d["packets"], d.get("engine_proc") or {}
    written = m.get("ngmedia_recording_written_bytes_total", 0) / 1e6
    print("| %s | %s | %s / %s | %s | %s (%s%%) | %s | %.1f (%.2f) | %.1f | %d | %d |" % (
        mode, calls, P["sent"], P["received"], P["loss_pct"], E.get("cpu_s_media"),
        E.get("cpu_pct_media"), E.get("cpu_us_per_relayed_packet"), written, written / secs,
        m["disk_bytes"] / 1e6, m["files"], m.get('ngmedia_packet_drops_total{reason="tap_full"}', 0)))
PY
