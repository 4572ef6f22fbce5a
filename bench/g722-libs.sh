#!/usr/bin/env bash
# G.722 through libspandsp (ngmedia) and libavcodec (rtpengine) on the same speech: CPU µs
# per 20 ms frame, bit-exactness, SNR. Needs libspandsp-dev, libavcodec-dev and sox.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
sox samples/speech-48k.wav -r 16000 -b 16 -c 1 -e signed -t raw "$out/speech16.raw"
cc -O2 -o "$out/g722-libs" bench/g722-libs.c \
    $(pkg-config --cflags --libs spandsp libavcodec libavutil) -lm
"$out/g722-libs" "$out/speech16.raw"
