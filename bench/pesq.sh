#!/usr/bin/env bash
# PESQ of speech through PCMU→Opus→PCMU and PCMU→G.729→PCMU, ngmedia next to rtpengine.
# See bench/pesq_compare.py for the method; needs `pip install pesq numpy` and sox.
set -euo pipefail
cd "$(dirname "$0")/.."
# NGMEDIA_BIN=target/debug/ngmedia measures another build (the debug one is fast enough).
[ -n "${NGMEDIA_BIN:-}" ] || [ -x target/release/ngmedia ] || cargo build --release --bin ngmedia >/dev/null
exec python3 bench/pesq_compare.py "$@"
