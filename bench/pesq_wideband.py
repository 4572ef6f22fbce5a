#!/usr/bin/env python3
"""Wideband PESQ (ITU-T P.862.2) of 16 kHz speech through each wideband codec ngmedia
transcodes to: G.722, AMR-WB (three modes) and Opus, encoded and decoded at 16 kHz by the
codecs crate (example `wideband`), the way a transcoder between two 16 kHz parties runs
them. The speech fixture samples/speech-48k.wav is taken to 16 kHz (and repeated to 8.7 s)
with sox; the output is aligned by cross-correlation and scored with the `pesq` package.

    pip install pesq numpy                      # sox must be installed
    python3 bench/pesq_wideband.py              # prints a markdown table

With --engines the same 16 kHz speech goes through the engines instead, side by side: one call
per engine and codec X (opus, AMR-WB) whose caller A speaks G.722 (encoded and decoded here
with libspandsp through ctypes) and whose callee B answers X only and echoes what it gets, so
A hears its speech after G.722 -> X -> G.722 through two transcoders of the engine (the
method of bench/pesq_compare.py, in real time):

    python3 bench/pesq_wideband.py --engines ngmedia,rtpengine
"""

import argparse
import ctypes

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


def g722_caller():
    """A G.722 caller for pesq_compare.through_engine: libspandsp's codec at 64 kbit/s, one
    fresh encoder and decoder per call."""
    sp = ctypes.CDLL("libspandsp.so.2")
    for fn in (sp.g722_encode_init, sp.g722_decode_init):
        fn.restype = ctypes.c_void_p
        fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    for fn in (sp.g722_encode, sp.g722_decode):
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    enc, dec = sp.g722_encode_init(None, 64000, 0), sp.g722_decode_init(None, 64000, 0)

    def encode(frame):
        frame = np.ascontiguousarray(frame, dtype=np.int16)
        out = (ctypes.c_uint8 * len(frame))()
        n = sp.g722_encode(enc, out, frame.ctypes.data, len(frame))
        return bytes(out[:n])

    def decode(payload):
        pcm = np.zeros(2 * len(payload), dtype=np.int16)
        n = sp.g722_decode(dec, pcm.ctypes.data, payload, len(payload))
        return pcm[:n]

    return (9, "G722/8000", 320, 160, encode, decode)


def through_engines(engines, ref):
    import pesq_compare as pc  # noqa: E402 (bench/ is on sys.path when run as a script)
    print("| path (16 kHz speech, G.722 caller) | %s |" % " | ".join(engines))
    print("|---|%s" % ("---|" * len(engines)))
    caller = g722_caller()
    alone = np.concatenate([caller[5](caller[4](ref[i:i + 320]))
                            for i in range(0, len(ref) - 319, 320)])
    deg, _ = align(ref, alone)
    g722 = "%.2f" % pesq(RATE, ref, deg, "wb")
    print("| G.722 alone (libspandsp) | %s |" % " | ".join([g722] * len(engines)))
    scores = {}
    for engine in engines:
        proc, ng = pc.start_engine(engine, 22271)
        try:
            for codec in ("opus", "AMR-WB"):
                try:
                    out, got, b_pkts, sent = pc.through_engine(
                        ng, ref, codec, "wb-%s-%s" % (codec, engine), caller=g722_caller())
                    deg, lag = align(ref, out)
                    scores[(engine, codec)] = "%.2f" % pesq(RATE, ref, deg, "wb")
                    print("  %s %s: %d of %d packets back, lag %d" % (engine, codec, got, sent, lag),
                          file=sys.stderr)
                except Exception as e:  # an engine without the codec
                    scores[(engine, codec)] = "—"
                    print("  %s %s: %s" % (engine, codec, e), file=sys.stderr)
        finally:
            proc.terminate()
            proc.wait()
    for codec in ("opus", "AMR-WB"):
        print("| G.722 → %s → G.722 | %s |" % (codec, " | ".join(scores[(e, codec)] for e in engines)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--engines", help="comma-separated: ngmedia, rtpengine")
    args = ap.parse_args()
    if args.engines:
        with tempfile.TemporaryDirectory() as tmp:
            ref_path = os.path.join(tmp, "ref.wav")
            subprocess.run(["sox", "-D", os.path.join(ROOT, "samples/speech-48k.wav"), "-r",
                            str(RATE), "-b", "16", "-c", "1", ref_path, "repeat", "2"], check=True)
            through_engines(args.engines.split(","), read(ref_path))
        return
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
