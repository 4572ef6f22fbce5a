#!/usr/bin/env python3
"""PESQ (ITU-T P.862, narrowband MOS-LQO) of real speech through transcoding engines.

For each engine (ngmedia, rtpengine) and codec X (opus, G729, G722, AMR, AMR-WB; an engine
without X is reported as not measured) one call is set up with
`codec: {transcode: [X]}`: caller A offers PCMU only, callee B answers X only. A sends the
speech file as 20 ms PCMU packets in real time; B echoes every packet it receives back to
the engine under its own SSRC, so the audio A gets back has gone PCMU -> X -> PCMU through
two transcoders of the engine. The returned PCMU is placed on its RTP timestamps, aligned
to the original by cross-correlation and scored with the `pesq` package.

With --sweep the same chain is run offline through the codecs crate (example
`roundtrip`) at every Opus complexity, with the codec's encode + decode time per frame,
to choose the complexity. Baselines: G.711 alone (mu-law round trip).

    pip install pesq numpy                      # sox must be installed
    bench/pesq.sh                               # both engines, opus and G729
    bench/pesq.sh --engines ngmedia --sweep     # plus the complexity sweep

Writes target/bench/pesq.json and prints a markdown table.
"""

import argparse
import json
import os
import selectors
import socket
import struct
import subprocess
import sys
import tempfile
import time
import wave

import numpy as np
from pesq import pesq

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.environ.get("HARNESS", "/work/shared/harness"))
from ngclient import NgClient, parse_sdp  # noqa: E402

RATE = 8000
FRAME = 160


def read_speech(path):
    """8 kHz mono int16 samples of `path`, converted with sox when it is anything else."""
    with wave.open(path) as w:
        ok = w.getframerate() == RATE and w.getnchannels() == 1 and w.getsampwidth() == 2
        if ok:
            return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)
    with tempfile.NamedTemporaryFile(suffix=".wav") as t:
        subprocess.run(["sox", path, "-r", str(RATE), "-c", "1", "-b", "16", t.name], check=True)
        return read_speech(t.name)


def ulaw_encode(x):
    x = x.astype(np.int32)
    sign = (x < 0).astype(np.int32)
    # ITU G.711 takes the one's complement of negative samples.
    mag = np.minimum(np.where(x < 0, -x - 1, x), 32635) + 0x84
    exp = np.clip(np.floor(np.log2(mag)).astype(np.int32) - 7, 0, 7)
    mant = (mag >> (exp + 3)) & 0x0F
    return (~((sign << 7) | (exp << 4) | mant) & 0xFF).astype(np.uint8)


def ulaw_decode(b):
    b = ~np.asarray(b, dtype=np.int32) & 0xFF
    exp = (b >> 4) & 7
    mag = (((b & 0x0F) << 3) + 0x84) << exp
    x = mag - 0x84
    return np.where(b & 0x80, -x, x).astype(np.int16)


def align(ref, deg):
    """`deg` shifted so it lines up with `ref` (cross-correlation peak), same length."""
    n = 1 << int(np.ceil(np.log2(len(ref) + len(deg))))
    r, d = ref.astype(np.float64), deg.astype(np.float64)
    corr = np.fft.irfft(np.fft.rfft(d, n) * np.conj(np.fft.rfft(r, n)), n)
    lag = int(np.argmax(corr))
    if lag > n // 2:
        lag -= n
    out = np.zeros(len(ref), dtype=np.int16)
    if lag >= 0:
        seg = deg[lag:lag + len(ref)]
        out[:len(seg)] = seg
    else:
        seg = deg[:len(ref) + lag]
        out[-lag:-lag + len(seg)] = seg
    return out, lag


def score(ref, deg):
    aligned, lag = align(ref, deg)
    return round(float(pesq(RATE, ref, aligned, "nb")), 3), lag


def start_engine(engine, ng_port):
    if engine == "ngmedia":
        binary = os.environ.get("NGMEDIA_BIN", os.path.join(ROOT, "target/release/ngmedia"))
        cmd = [binary, "--interface", "127.0.0.1",
               "--listen-ng", "127.0.0.1:%d" % ng_port, "--port-min", "31000", "--port-max", "31999",
               "--num-threads", "1", "--log-level", "warn"]
    else:
        cmd = ["rtpengine", "--config-file=none", "--table=-1", "--interface=127.0.0.1",
               "--listen-ng=127.0.0.1:%d" % ng_port, "--port-min=31000", "--port-max=31999",
               "--foreground", "--log-stderr", "--log-level=4"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ng = NgClient(port=ng_port, timeout=0.3, retries=0)
    for _ in range(50):
        try:
            ng.ping()
            return proc, NgClient(port=ng_port, timeout=2.0)
        except Exception:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("%s did not answer ping" % engine)


def sdp(port, lines):
    return ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=pesq\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=audio %d RTP/AVP %s\r\n%sa=ptime:20\r\na=sendrecv\r\n"
            % (port, " ".join(str(p) for p, _, _ in lines),
               "".join("a=rtpmap:%d %s\r\n" % (p, m) + ("a=fmtp:%d %s\r\n" % (p, f) if f else "")
                       for p, m, f in lines)))


CODECS = {
    # name in `transcode`, rtpmap B answers with, fmtp
    "opus": ("opus", "opus/48000/2", None),
    "G729": ("G729", "G729/8000", "annexb=no"),
    "G722": ("G722", "G722/8000", None),
    "AMR": ("AMR", "AMR/8000", "octet-align=1"),
    "AMR-WB": ("AMR-WB", "AMR-WB/16000", "octet-align=1"),
}


# What caller A speaks: payload type, rtpmap, samples per packet, RTP clock units per packet,
# encode (PCM frame -> payload bytes) and decode (payload bytes -> PCM), optionally fmtp.
# PCMU by default; bench/pesq_wideband.py passes G.722 and AMR-WB.
PCMU_CALLER = (0, "PCMU/8000", FRAME, FRAME, lambda f: ulaw_encode(f).tobytes(),
               lambda p: ulaw_decode(np.frombuffer(p, dtype=np.uint8)))


def through_engine(ng, speech, codec, call_id, caller=PCMU_CALLER):
    """Send `speech` A -> engine -> B (echo) -> engine -> A; return the PCM A received."""
    name, rtpmap, fmtp = CODECS[codec]
    a_pt, a_rtpmap, a_frame, a_step, a_encode, a_decode = caller[:6]
    a_fmtp = caller[6] if len(caller) > 6 else None
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for s in (a, b):
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
    offer = ng.offer(sdp(a.getsockname()[1], [(a_pt, a_rtpmap, a_fmtp)]), call_id, "ta",
                     ICE="remove", replace=["origin"], codec={"transcode": [name]})
    assert offer.get("result") == "ok", offer
    osdp = parse_sdp(offer["sdp"])
    om = osdp.audio()
    pt = next(p for p, (enc, rate, _) in om.rtpmap().items() if enc.lower() == name.lower())
    b_dest = (osdp.media_address(om), om.port)
    answer = ng.answer(sdp(b.getsockname()[1], [(pt, rtpmap, fmtp)]), call_id, "ta", "tb",
                       ICE="remove", replace=["origin"])
    assert answer.get("result") == "ok", answer
    asdp = parse_sdp(answer["sdp"])
    am = asdp.audio()
    assert am.payload_types()[0] == a_pt, "caller keeps %s: %s" % (a_rtpmap, am.fmts)
    a_dest = (asdp.media_address(am), am.port)

    frames = [speech[i:i + a_frame] for i in range(0, len(speech) - a_frame + 1, a_frame)]
    sel = selectors.DefaultSelector()
    sel.register(a, selectors.EVENT_READ, "a")
    sel.register(b, selectors.EVENT_READ, "b")
    got = {}
    b_pkts = 0
    t0 = time.monotonic()
    k = 0
    end = t0 + len(frames) * 0.02 + 1.0
    while time.monotonic() < end:
        now = time.monotonic()
        while k < len(frames) and now >= t0 + k * 0.02:
            hdr = struct.pack("!BBHII", 0x80, (0x80 if k == 0 else 0) | a_pt, k, k * a_step,
                              0xA0A0A0A0)
            a.sendto(hdr + a_encode(frames[k]), a_dest)
            k += 1
        wait = max(0.0, min(t0 + k * 0.02, end) - time.monotonic()) if k < len(frames) else 0.05
        for key, _ in sel.select(timeout=wait):
            sock = key.fileobj
            while True:
                try:
                    data, _ = sock.recvfrom(4096)
                except BlockingIOError:
                    break
                if len(data) < 12 or 64 <= (data[1] & 0x7F) <= 95:
                    continue  # RTCP
                if key.data == "b":
                    b_pkts += 1
                    b.sendto(data[:8] + struct.pack("!I", 0xB0B0B0B0) + data[12:], b_dest)
                elif data[1] & 0x7F == a_pt:
                    ts = struct.unpack("!I", data[4:8])[0]
                    got[ts] = data[12:]
    ng.delete(call_id, "ta")
    a.close()
    b.close()
    if not got:
        raise RuntimeError("nothing came back (B got %d packets)" % b_pkts)
    # Timestamps are a 32-bit line: order them relative to the first one received.
    first = next(iter(got))
    rel = {((t - first + 0x80000000) & 0xFFFFFFFF) - 0x80000000: p for t, p in got.items()}
    lo = min(rel)
    per_unit = a_frame // a_step  # PCM samples per RTP clock unit (2 for G.722)
    out = np.zeros((max(rel) - lo) * per_unit + a_frame, dtype=np.int16)
    for t in sorted(rel):
        pcm = a_decode(rel[t])
        at = (t - lo) * per_unit
        out[at:at + len(pcm)] = pcm
    return out, len(got), b_pkts, len(frames)


def write_wav(path, pcm):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.astype("<i2").tobytes())


def sweep(speech_path, speech, rows):
    example = os.path.join(ROOT, "target/release/examples/roundtrip")
    if not os.path.exists(example):
        subprocess.run(["cargo", "build", "--release", "-p", "ngmedia-codecs", "--example", "roundtrip"],
                       cwd=ROOT, check=True)
    runs = [("G729", 0, None)]
    runs += [("opus", c, b) for b in (None, 16000, 24000, 32000) for c in (0, 1, 3, 5, 7, 10)]
    with tempfile.TemporaryDirectory() as tmp:
        for codec, c, bitrate in runs:
            out = os.path.join(tmp, "out.wav")
            cmd = [example, codec, str(c), speech_path, out] + ([str(bitrate)] if bitrate else [])
            # Best of three: the machine is shared, the minimum is the codec's own cost.
            us = min(float(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
                     for _ in range(3))
            mos, lag = score(speech, read_speech(out))
            opus = codec == "opus"
            rows.append({"engine": "codecs crate", "path": "PCMU→%s→PCMU" % codec,
                         "complexity": c if opus else None,
                         "bitrate": (bitrate or "libopus default") if opus else None,
                         "mos_lqo": mos, "codec_us_per_frame": round(us, 1), "lag_samples": lag})
            print("  %s c=%s bitrate=%s: MOS-LQO %.3f, %.1f µs/frame enc+dec"
                  % (codec, c, bitrate, mos, us), file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speech", default=os.path.join(ROOT, "samples/speech-8k-long.wav"))
    ap.add_argument("--engines", default="ngmedia,rtpengine")
    ap.add_argument("--codecs", default="opus,G729")
    ap.add_argument("--ng-port", type=int, default=22251)
    ap.add_argument("--sweep", action="store_true", help="Opus complexity sweep through the codecs crate")
    ap.add_argument("--keep", help="directory to write the degraded WAVs to")
    args = ap.parse_args()
    speech = read_speech(args.speech)
    rows = [{"engine": "-", "path": "PCMU (G.711 alone)", "complexity": None,
             "mos_lqo": score(speech, ulaw_decode(ulaw_encode(speech)))[0]}]
    for engine in args.engines.split(","):
        proc, ng = start_engine(engine, args.ng_port)
        try:
            for codec in args.codecs.split(","):
                try:
                    pcm, rx, b_pkts, sent = through_engine(ng, speech, codec,
                                                           "pesq-%s-%s" % (engine, codec))
                except Exception as e:  # an engine without that codec: say so, go on
                    print("  %s %s: not measured (%r)" % (engine, codec, e), file=sys.stderr)
                    continue
                mos, lag = score(speech, pcm)
                if args.keep:
                    os.makedirs(args.keep, exist_ok=True)
                    write_wav(os.path.join(args.keep, "%s-%s.wav" % (engine, codec)), pcm)
                rows.append({"engine": engine, "path": "PCMU→%s→PCMU" % codec,
                             # ngmedia's narrowband rule at its default 32 kbit/s
                             # (opus_complexity in engine/src/core/transcode/spec.rs).
                             "complexity": 0 if codec == "opus" and engine == "ngmedia" else None,
                             "bitrate": 32000 if codec == "opus" else None,
                             "mos_lqo": mos, "sent": sent, "b_received": b_pkts, "a_received": rx,
                             "lag_samples": lag})
                print("  %s %s: MOS-LQO %.3f (%d sent, B got %d, A got %d, lag %d)"
                      % (engine, codec, mos, sent, b_pkts, rx, lag), file=sys.stderr)
        finally:
            proc.terminate()
            proc.wait(timeout=5)
    if args.sweep:
        sweep(args.speech, speech, rows)
    os.makedirs(os.path.join(ROOT, "target/bench"), exist_ok=True)
    with open(os.path.join(ROOT, "target/bench/pesq.json"), "w") as f:
        json.dump(rows, f, indent=2)
    print("| engine | path | Opus complexity | Opus bit/s | PESQ MOS-LQO (P.862 nb) | codec µs/frame |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %s | %s | %s | %.2f | %s |" % (
            r["engine"], r["path"], "" if r.get("complexity") is None else r["complexity"],
            r.get("bitrate") or "", r["mos_lqo"], r.get("codec_us_per_frame", "")))


if __name__ == "__main__":
    main()
