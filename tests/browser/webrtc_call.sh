#!/usr/bin/env bash
# WebRTC browser ↔ plain RTP, then browser ↔ SDES-SRTP desk phone (offer flags `RTP/SAVP`,
# `ICE: remove`, `DTLS: off`, `rtcp-mux: [demux]`), through ngmedia (tests/browser/webrtc_call.mjs),
# inside a network namespace with only `lo` up, so no packet can leave loopback and Chromium
# sees no other interface for its candidates. Needs root (ip netns), node with `npm ci` done here, the
# system chromium, and a built daemon (cargo build --bins). Artifacts (getStats JSON,
# screenshot, SDPs, daemon log) go to target/browser-webrtc/ (the SDES call's to its sdes/).
#   bash tests/browser/webrtc_call.sh
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=$ROOT/target/browser-webrtc
BIN=${NGMEDIA_BIN:-$ROOT/target/debug/ngmedia}
NS=ngm-$$
NG=127.0.0.1:22223
# Bound on the whole browser run (launch, call set-up, media both ways).
LIMIT=90

rm -rf "$OUT"
mkdir -p "$OUT"

ip netns add "$NS"
DAEMON=
cleanup() {
    if [ -n "$DAEMON" ] && kill -0 "$DAEMON" 2>/dev/null; then
        kill -TERM "$DAEMON" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$DAEMON" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$DAEMON" 2>/dev/null || true
    fi
    ip netns delete "$NS" 2>/dev/null || true
}
trap cleanup EXIT
ip -n "$NS" link set lo up

# `ip netns exec` execs the daemon: $! is the daemon itself.
ip netns exec "$NS" "$BIN" --config none --interface 127.0.0.1 --listen-ng "$NG" \
    --listen-http 127.0.0.1:22280 --port-min 30000 --port-max 30999 --log-level info \
    >"$OUT/ngmedia.log" 2>&1 &
DAEMON=$!

# Wait (bounded) until the daemon answers ping inside the namespace.
ip netns exec "$NS" python3 - "$NG" <<'PY'
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.2)
deadline = time.time() + 20
while time.time() < deadline:
    try:
        s.sendto(b"ping_1 d7:command4:pinge", (host, int(port)))
        if b"pong" in s.recv(4096):
            sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit("ngmedia did not answer ping within 20 s")
PY

status=0
timeout -k 5 "$LIMIT" ip netns exec "$NS" node "$ROOT/tests/browser/webrtc_call.mjs" "$NG" "$OUT" plain || status=$?
if [ "$status" -eq 0 ]; then
    timeout -k 5 "$LIMIT" ip netns exec "$NS" node "$ROOT/tests/browser/webrtc_call.mjs" "$NG" "$OUT/sdes" sdes || status=$?
fi
if [ "$status" -ne 0 ]; then
    echo "== webrtc browser test failed ($status); daemon log (last 60 lines):"
    tail -n 60 "$OUT/ngmedia.log" || true
fi
exit "$status"
