#!/usr/bin/env python3
"""Wideband PESQ (ITU-T P.862.2) of 16 kHz speech through each wideband codec ngmedia
transcodes to: G.722, AMR-WB (three modes) and Opus, encoded and decoded at 16 kHz by the
codecs crate (example `wideband`), the way a transcoder between two 16 kHz parties runs
them. The speech fixture samples/speech-48k.wav is taken to 16 kHz (and repeated to 8.7 s)
with sox; the output is aligned by cross-correlation and scored with the `pesq` package.

    pip install pesq numpy                      # sox must be installed
    python3 bench/pesq_wideband.py              # prints a markdown table

With --engines the same 16 kHz speech goes through the engines instead, side by side: one call
per engine and path whose caller A speaks G.722 (encoded and decoded here with libspandsp
through ctypes) or AMR-WB 14.25 kbit/s (vo-amrwbenc and libopencore-amrwb) and whose callee B
answers X (opus, AMR-WB) only and echoes what it gets, so A hears its speech after
A's codec -> X -> A's codec through two transcoders of the engine (the method of
bench/pesq_compare.py, in real time):

    python3 bench/pesq_wideband.py --engines ngmedia,rtpengine

With --sweep the Opus settings for a 16 kHz party are weighed instead (release example
`opus_wideband`): the speech first through the other party's codec (AMR-WB 14.25 kbit/s or
G.722, as the transcoder gets it), then Opus encoded and decoded at 16 kHz at every complexity
and bitrate, and a few other encoder settings (48 kHz as rtpengine encodes, another
application or signal, decoding at 48 kHz and resampling); PESQ P.862.2 next to the Opus
encoder's and decoder's CPU µs per 20 ms frame (best of five passes) and the Opus modes used:

    python3 bench/pesq_wideband.py --sweep      # writes target/bench/pesq-opus-wb.json
"""

import argparse
import ctypes
import json
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


def amrwb_caller():
    """An AMR-WB caller for pesq_compare.through_engine: vo-amrwbenc at 14.25 kbit/s (mode 3)
    and libopencore-amrwb, octet-aligned, one frame per packet, one fresh encoder and decoder
    per call."""
    enc_lib = ctypes.CDLL("libvo-amrwbenc.so.0")
    dec_lib = ctypes.CDLL("libopencore-amrwb.so.0")
    for fn in (enc_lib.E_IF_init, dec_lib.D_IF_init):
        fn.restype = ctypes.c_void_p
        fn.argtypes = []
    enc_lib.E_IF_encode.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                                    ctypes.c_void_p, ctypes.c_int]
    dec_lib.D_IF_decode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p,
                                    ctypes.c_int]
    enc, dec = enc_lib.E_IF_init(), dec_lib.D_IF_init()

    def encode(frame):
        frame = np.ascontiguousarray(frame, dtype=np.int16)
        out = (ctypes.c_uint8 * 64)()
        n = enc_lib.E_IF_encode(enc, 3, frame.ctypes.data, out, 0)
        # RFC 4867 octet-aligned: CMR 15 (no request), then the storage format's frame header,
        # which is the table of contents entry of a last frame.
        return bytes([0xF0]) + bytes(out[:n])

    def decode(payload):
        pcm = np.zeros(320, dtype=np.int16)
        frame = bytes([payload[1] & 0x7F]) + payload[2:]
        dec_lib.D_IF_decode(dec, frame, pcm.ctypes.data, 0)
        return pcm

    return (96, "AMR-WB/16000", 320, 320, encode, decode, "octet-align=1")


CALLERS = {"G722": g722_caller, "AMR-WB": amrwb_caller}


# Engine paths: the caller's codec, the callee's.
PATHS = [("G722", "opus"), ("G722", "AMR-WB"), ("AMR-WB", "opus")]


def through_engines(engines, ref, paths=PATHS):
    import pesq_compare as pc  # noqa: E402 (bench/ is on sys.path when run as a script)
    print("| path (16 kHz speech, P.862.2 wb) | %s |" % " | ".join(engines))
    print("|---|%s" % ("---|" * len(engines)))
    for name in sorted({c for c, _ in paths}):
        caller = CALLERS[name]()
        alone = np.concatenate([caller[5](caller[4](ref[i:i + 320]))
                                for i in range(0, len(ref) - 319, 320)])
        deg, _ = align(ref, alone)
        mos = "%.2f" % pesq(RATE, ref, deg, "wb")
        print("| %s alone (the caller's own codec) | %s |" % (name, " | ".join([mos] * len(engines))))
    scores = {}
    for engine in engines:
        proc, ng = pc.start_engine(engine, 22271)
        try:
            for first, codec in paths:
                try:
                    out, got, b_pkts, sent = pc.through_engine(
                        ng, ref, codec, "wb-%s-%s-%s" % (first, codec, engine),
                        caller=CALLERS[first]())
                    deg, lag = align(ref, out)
                    scores[(engine, first, codec)] = "%.2f" % pesq(RATE, ref, deg, "wb")
                    print("  %s %s -> %s: %d of %d packets back, lag %d"
                          % (engine, first, codec, got, sent, lag), file=sys.stderr)
                except Exception as e:  # an engine without the codec
                    scores[(engine, first, codec)] = "—"
                    print("  %s %s -> %s: %s" % (engine, first, codec, e), file=sys.stderr)
        finally:
            proc.terminate()
            proc.wait()
    for first, codec in paths:
        print("| %s → %s → %s | %s |" % (first, codec, first, " | ".join(
            scores[(e, first, codec)] for e in engines)))


SWEEP_VARIANTS = [
    # label, extra settings; at 32 kbit/s and the complexities the default row compares
    ("48 kHz in and out (as rtpengine)", ["enc=48000", "dec=48000"]),
    ("decode at 48 kHz, resample", ["dec=48000"]),
    ("application audio", ["app=audio"]),
    ("application restricted-lowdelay (CELT)", ["app=lowdelay"]),
    ("signal auto", ["signal=auto"]),
    ("max bandwidth MB", ["bw=mb"]),
]


def sweep(ref_path, ref, befores):
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "ngmedia-codecs", "--example",
                    "opus_wideband"], cwd=ROOT, check=True)
    example = os.path.join(ROOT, "target/release/examples/opus_wideband")
    rows = []

    def run(before, extra):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "out.wav")
            # Pinned to the last CPU so the timings compare (the machine is shared).
            cpu = str(os.cpu_count() - 1)
            res = json.loads(subprocess.run(["taskset", "-c", cpu, example, ref_path, out,
                                             "before=" + before] + extra, check=True,
                                            capture_output=True, text=True).stdout)
            deg, lag = align(ref, read(out))
            res["mos"] = round(float(pesq(RATE, ref, deg, "wb")), 3)
            res["modes"] = ", ".join(m if share == 1 else "%s %.0f %%" % (m, share * 100)
                                     for m, share in sorted(res["modes"].items(),
                                                            key=lambda kv: -kv[1]))
            res.update(before=before, settings=" ".join(extra), lag=lag)
            rows.append(res)
            print("  %s %s: %.3f, enc %.1f µs, dec %.1f µs, %s" % (
                before, " ".join(extra), res["mos"], res["enc_us"], res["dec_us"], res["modes"]),
                file=sys.stderr)
            return res

    complexities = list(range(11))
    bitrates = (16000, 20000, 24000, 32000, 40000, 48000)
    for before in befores:
        table = {}
        for bitrate in bitrates:
            for c in complexities:
                table[(bitrate, c)] = run(before, ["b=%d" % bitrate, "c=%d" % c])
        print("\n%s → Opus (16 kHz) → 16 kHz, PESQ P.862.2 (encode µs per 20 ms):\n" % before)
        print("| Opus bit/s | %s |" % " | ".join("c%d" % c for c in complexities))
        print("|---|%s" % ("---|" * len(complexities)))
        for bitrate in bitrates:
            print("| %d | %s |" % (bitrate, " | ".join(
                "%.2f (%.0f)" % (table[(bitrate, c)]["mos"], table[(bitrate, c)]["enc_us"])
                for c in complexities)))
        print("\n| 32 kbit/s, other settings | c | PESQ | encode µs | decode µs | modes |")
        print("|---|---|---|---|---|---|")
        for c in (0, 3, 5, 10):
            r = table[(32000, c)]
            print("| 16 kHz, VoIP, voice (ngmedia) | %d | %.2f | %.1f | %.1f | %s |"
                  % (c, r["mos"], r["enc_us"], r["dec_us"], r["modes"]))
            for label, extra in SWEEP_VARIANTS:
                r = run(before, ["b=32000", "c=%d" % c] + extra)
                print("| %s | %d | %.2f | %.1f | %.1f | %s |"
                      % (label, c, r["mos"], r["enc_us"], r["dec_us"], r["modes"]))
    os.makedirs(os.path.join(ROOT, "target/bench"), exist_ok=True)
    with open(os.path.join(ROOT, "target/bench/pesq-opus-wb.json"), "w") as f:
        json.dump(rows, f, indent=2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--engines", help="comma-separated: ngmedia, rtpengine")
    ap.add_argument("--sweep", action="store_true", help="Opus settings for a 16 kHz party")
    ap.add_argument("--before", default="AMR-WB,G722,none",
                    help="with --sweep: the other party's codec(s) before Opus")
    args = ap.parse_args()
    if args.sweep:
        with tempfile.TemporaryDirectory() as tmp:
            ref_path = os.path.join(tmp, "ref.wav")
            subprocess.run(["sox", "-D", os.path.join(ROOT, "samples/speech-48k.wav"), "-r",
                            str(RATE), "-b", "16", "-c", "1", ref_path, "repeat", "2"], check=True)
            sweep(ref_path, read(ref_path), args.before.split(","))
        return
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
