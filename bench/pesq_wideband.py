#!/usr/bin/env python3
"""Wideband PESQ (ITU-T P.862.2) of 16 kHz speech through each wideband codec ngmedia
transcodes to: G.722, AMR-WB (three modes) and Opus, encoded and decoded at 16 kHz by the
codecs crate (example `wideband`), the way a transcoder between two 16 kHz parties runs
them. The speech fixture samples/speech-48k.wav is taken to 16 kHz (and repeated to 8.7 s)
with sox; the output is aligned by cross-correlation and scored with the `pesq` package.

    pip install pesq numpy                      # sox must be installed
    python3 bench/pesq_wideband.py              # prints a markdown table
"""

import os
import subprocess
import sys
import tempfile
import wave

import numpy as np
from pesq import pesq

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATE = 16000
RUNS = [("G722", None), ("AMR-WB", 12650), ("AMR-WB", 14250), ("AMR-WB", 23850),
        ("opus", 24000), ("opus", 32000)]


def read(path):
    with wave.open(path) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)


def align(ref, deg):
    n = 1 << int(np.ceil(np.log2(len(ref) + len(deg))))
    corr = np.fft.irfft(np.fft.rfft(deg.astype(float), n) * np.conj(np.fft.rfft(ref.astype(float), n)), n)
    lag = int(np.argmax(corr))
    lag = lag - n if lag > n // 2 else lag
    out = np.zeros(len(ref), dtype=np.int16)
    seg = deg[lag:lag + len(ref)] if lag >= 0 else deg[:len(ref) + lag]
    start = 0 if lag >= 0 else -lag
    out[start:start + len(seg)] = seg
    return out, lag


def main():
    subprocess.run(["cargo", "build", "-q", "-p", "ngmedia-codecs", "--example", "wideband"],
                   cwd=ROOT, check=True)
    example = os.path.join(ROOT, "target/debug/examples/wideband")
    with tempfile.TemporaryDirectory() as tmp:
        ref_path = os.path.join(tmp, "ref.wav")
        # -D: no dither, so every run scores the same input.
        subprocess.run(["sox", "-D", os.path.join(ROOT, "samples/speech-48k.wav"), "-r", str(RATE),
                        "-b", "16", "-c", "1", ref_path, "repeat", "2"], check=True)
        ref = read(ref_path)
        print("| path (16 kHz in and out) | PESQ MOS-LQO (P.862.2 wb) |")
        print("|---|---|")
        print("| none (reference) | %.2f |" % pesq(RATE, ref, ref, "wb"))
        for codec, bitrate in RUNS:
            out = os.path.join(tmp, "out.wav")
            subprocess.run([example, codec, ref_path, out] + ([str(bitrate)] if bitrate else []),
                           check=True)
            deg, lag = align(ref, read(out))
            label = codec + (" %.2f kbit/s" % (bitrate / 1000) if bitrate else " 64 kbit/s")
            print("| %s | %.2f |" % (label, pesq(RATE, ref, deg, "wb")))
            print("  %s: lag %d samples" % (label, lag), file=sys.stderr)


if __name__ == "__main__":
    main()
