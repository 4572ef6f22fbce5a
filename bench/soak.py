#!/usr/bin/env python3
"""Soak: call churn with media and hostile traffic, then proof that everything came back.

Starts nothing itself: point it at a running daemon (ng + HTTP on loopback) and its pid. For
DURATION seconds it keeps about CALLS two-party calls up: each is offered, answered, carries
RTP both ways (and RTCP now and then), is re-offered (a re-INVITE; every third one a hold
and resume), and is deleted after a random lifetime, when a new one takes its place. Every
TRANSCODE-th call transcodes (PCMU offered, PCMA answered) and every RECORD-th is recorded
(`start recording` once it is answered; with --recording-dir the finished recordings are
counted and removed as the run goes, so the disk stays flat). Mixed in, every tick:

  strangers    RTP from a socket that is no party of the call, to a live media port
  malformed    short, version 0/1, lying CSRC counts and extension lengths, padding longer
               than the packet; RTCP with lying lengths; STUN with lying attribute lengths
               and bad integrity; DTLS records with lying lengths and garbage handshakes
  floods       bursts of junk to one port, and (--port-range) to ports no call holds
  ng garbage   truncated bencode, lists instead of dictionaries, huge and 500-m-line SDP,
               offers with bad addresses and bad crypto, unknown commands

Every SAMPLE seconds it prints the daemon's RSS, file descriptors, threads, calls, streams
and ports (from /proc and /metrics). At the end it deletes its calls, waits for the daemon to
release them, and compares the last sample with the baseline taken after WARMUP seconds:
the verdict fails if RSS grew by more than --rss-tolerance percent, or fds, threads, calls,
streams or ports did not return to the baseline.

    bench/soak.py --pid $(pidof ngmedia) --ng 127.0.0.1:2223 --http 127.0.0.1:8080 \\
        --calls 200 --duration 600

It also measures the memory of an idle call and of a transcoded call (--call-memory N: before
the churn, RSS before and after N calls of each kind with media flowing, divided by N).
"""
import argparse
import json
import os
import random
import socket
import struct
import sys
import time
import urllib.request

from bencode import bdec, benc


class Ng:
    """ng over UDP, one request at a time (bounded wait, three tries)."""

    def __init__(self, addr):
        self.addr = addr
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(2)
        self.failures = 0

    def __call__(self, **kw):
        cookie = b"%08x" % random.getrandbits(32)
        msg = cookie + b" " + benc(kw)
        for _ in range(3):
            self.sock.sendto(msg, self.addr)
            try:
                while True:
                    data, _ = self.sock.recvfrom(65535)
                    if data.startswith(cookie + b" "):
                        return bdec(data.split(b" ", 1)[1])[0]
            except socket.timeout:
                continue
        self.failures += 1
        return {}

    def raw(self, payload):
        """Send garbage; drain whatever comes back without waiting for it."""
        self.sock.sendto(payload, self.addr)


def sdp(port, codecs=(0,), mode=None, addr="127.0.0.1"):
    names = {0: "PCMU/8000", 8: "PCMA/8000", 101: "telephone-event/8000"}
    lines = [
        "v=0", "o=- 1 1 IN IP4 %s" % addr, "s=-", "c=IN IP4 %s" % addr, "t=0 0",
        "m=audio %d RTP/AVP %s" % (port, " ".join(str(c) for c in codecs)),
    ]
    lines += ["a=rtpmap:%d %s" % (c, names[c]) for c in codecs]
    if mode:
        lines.append("a=" + mode)
    return "\r\n".join(lines) + "\r\n"


def media_port(sdp_text):
    for line in sdp_text.split("\n"):
        if line.startswith("m=audio "):
            return int(line.split()[1])
    return None


STRANGER_SSRC = 0x5742A9E1
LOUD = b"\x80" * 160  # what strangers send: PCMU at full scale
LOUD_CODES = (0x80, 0xAA)  # full scale in PCMU and in PCMA

def rtp(seq, ts, ssrc, pt=0, payload=None):
    payload = payload or (b"\xd5" if pt == 8 else b"\xff") * 160  # silence in PCMA or PCMU
    return struct.pack("!BBHII", 0x80, pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload


def rtcp_rr(ssrc):
    return struct.pack("!BBHI", 0x80, 201, 1, ssrc)


class Call:
    def __init__(self, n, transcode, record):
        self.id = "soak-%d-%d" % (os.getpid(), n)
        self.transcode = transcode
        self.record = record
        self.a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for s in (self.a, self.b):
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
        self.a_port = self.a.getsockname()[1]
        self.b_port = self.b.getsockname()[1]
        self.facing_a = self.facing_b = None  # the engine ports each party sends to
        self.seq = random.randrange(65536)
        self.seq_b = random.randrange(65536)
        self.ssrc_a = random.getrandbits(32)
        self.ssrc_b = random.getrandbits(32)
        self.ends = 0.0
        self.reoffers = 0
        self.held = False
        self.ending = False
        self.sent = self.received = 0

    def close(self):
        self.a.close()
        self.b.close()

    def offer_flags(self):
        """What the proxy adds to every offer of the call, re-offers included."""
        return {"codec": {"transcode": ["PCMA"]}} if self.transcode else {}

    def set_up(self, ng, lifetime):
        r = ng(command="offer", **{"call-id": self.id, "from-tag": "a"},
               sdp=sdp(self.a_port), **self.offer_flags())
        if r.get("result") != b"ok":
            return False
        self.facing_b = media_port(r["sdp"].decode())
        answer_codecs = (8,) if self.transcode else (0,)
        r = ng(command="answer", **{"call-id": self.id, "from-tag": "a", "to-tag": "b"},
               sdp=sdp(self.b_port, answer_codecs))
        if r.get("result") != b"ok":
            return False
        self.facing_a = media_port(r["sdp"].decode())
        self.ends = time.monotonic() + lifetime
        if self.record:
            r = ng(command="start recording", **{"call-id": self.id})
            if r.get("result") != b"ok":
                return False
        return True

    def reoffer(self, ng):
        """A re-INVITE from the caller; every third one puts the call on hold first."""
        self.reoffers += 1
        mode = "sendonly" if self.reoffers % 3 == 0 else None
        r = ng(command="offer", **{"call-id": self.id, "from-tag": "a", "to-tag": "b"},
               sdp=sdp(self.a_port, mode=mode), **self.offer_flags())
        if r.get("result") == b"ok":
            self.held = mode is not None
            answer_mode = "recvonly" if mode else None
            codecs = (8,) if self.transcode else (0,)
            ng(command="answer", **{"call-id": self.id, "from-tag": "a", "to-tag": "b"},
               sdp=sdp(self.b_port, codecs, answer_mode))

    def send_media(self, packets):
        if self.ending:
            return
        for _ in range(packets):
            self.seq += 1
            ts = self.seq * 160
            try:
                self.a.sendto(rtp(self.seq, ts, self.ssrc_a), ("127.0.0.1", self.facing_a))
                self.sent += 1
                if not self.held:  # on hold, A gets nothing (its SDP says sendonly)
                    # B's sequence numbers go on where they stopped; its clock ran on.
                    self.seq_b += 1
                    pt = 8 if self.transcode else 0
                    self.b.sendto(rtp(self.seq_b, ts, self.ssrc_b, pt),
                                  ("127.0.0.1", self.facing_b))
                    self.sent += 1
            except OSError:
                pass
        if random.random() < 0.05:
            try:
                self.a.sendto(rtcp_rr(self.ssrc_a), ("127.0.0.1", self.facing_a + 1))
            except OSError:
                pass

    def drain(self):
        """Counts the call's media that reached a party: 172-byte RTP in the call's codecs
        that is not a stranger's. Strangers' RTP, which the engine relays without following
        it, is loud and has its own SSRC; a transcoded stream has the engine's SSRC, so the
        party's own cannot be the test."""
        for s in (self.a, self.b):
            while True:
                try:
                    pkt = s.recv(2048)
                except (BlockingIOError, OSError):
                    break
                if (len(pkt) == 172 and pkt[0] == 0x80 and pkt[1] & 0x7F in (0, 8)
                        and pkt[12] not in LOUD_CODES
                        and int.from_bytes(pkt[8:12], "big") != STRANGER_SSRC):
                    self.received += 1


def sweep_recordings(folder):
    """Counts the finished recordings (their JSON metadata) in FOLDER and removes them."""
    if not folder:
        return 0
    done = 0
    for name in os.listdir(folder):
        if name.endswith(".json"):
            stem = name[:-len(".json")]
            for other in os.listdir(folder):
                if other.startswith(stem):
                    os.remove(os.path.join(folder, other))
            done += 1
    return done


def malformed_packets():
    """One of each hostile datagram class, freshly randomised."""
    r = random.getrandbits
    stun_hdr = lambda length: struct.pack("!HHI12s", 0x0001, length, 0x2112A442, os.urandom(12))
    return [
        b"",
        b"\x80",
        os.urandom(random.randrange(1, 12)),
        bytes([0x00]) + os.urandom(40),                                    # version 0
        bytes([0x40]) + os.urandom(40),                                    # version 1
        bytes([0x8F, 0]) + os.urandom(14),                                 # 15 CSRCs, 14 bytes
        struct.pack("!BBHII", 0x90, 0, 1, 1, 1) + struct.pack("!HH", 0xBEDE, 0xFFFF),
        struct.pack("!BBHII", 0xA0, 0, 1, 1, 1) + b"\x00" * 4 + b"\xff",  # padding > packet
        struct.pack("!BBHI", 0x80, 200, 0xFFFF, r(32)),                    # SR, lying length
        struct.pack("!BBHI", 0x81, 201, 7, r(32)) + os.urandom(8),         # RR, short block
        struct.pack("!BBHI", 0x80, 207, 3, r(32)) + b"\x04\x00\xff\xff",   # XR, lying block
        stun_hdr(0xFFFC),                                                  # STUN, lying length
        stun_hdr(8) + struct.pack("!HH", 0x0006, 0xFFFF) + b"abcd",        # lying attribute
        stun_hdr(24) + struct.pack("!HH", 0x0008, 20) + os.urandom(20),    # bad integrity
        bytes([22, 0xFE, 0xFD]) + b"\x00" * 8 + b"\xff\xff" + os.urandom(30),  # DTLS, lying
        bytes([22, 0xFE, 0xFF, 0, 0]) + os.urandom(8) + struct.pack("!H", 20) + os.urandom(20),
        bytes([23, 0xFE, 0xFD]) + os.urandom(60),                          # app data, no session
        os.urandom(1500),
    ]


def ng_garbage():
    """A dozen hostile ng requests, and the call-ids of the offers among them: the ones the
    engine takes (bad crypto and fingerprints are skipped as rtpengine skips them) are calls
    to delete afterwards."""
    huge = "v=0\r\n" + "a=x:" + "y" * 60000 + "\r\n"
    many = sdp(40000) + "".join("m=audio %d RTP/AVP 0\r\n" % (40002 + 2 * i) for i in range(500))
    bad_addr = sdp(40000).replace("c=IN IP4 127.0.0.1", "c=IN IP4 999.1.1.1")
    bad_crypto = sdp(40000).replace("RTP/AVP", "RTP/SAVP") + \
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:@@@notbase64@@@\r\n"
    bad_fp = sdp(40000).replace("RTP/AVP", "UDP/TLS/RTP/SAVP") + \
        "a=setup:actpass\r\na=fingerprint:sha-256 ZZ:00\r\n"
    bodies = [
        b"d7:command4:ping",                                     # truncated
        b"l4:pinge",                                             # a list
        b"d7:commandi5ee",                                       # command as an integer
        b"d7:command5:bogus7:call-id1:xe",                       # unknown command
        b"d999999:abce",                                         # lying string length
        b"d1:a" * 500 + b"e" * 500,                              # deep nesting
        b"{\"command\": [}",                                     # broken JSON
    ]
    ids = []
    for text in (huge, many, bad_addr, bad_crypto, bad_fp):
        ids.append("soak-garbage-%d" % random.getrandbits(32))
        bodies.append(benc({"command": "offer", "from-tag": "g", "sdp": text,
                            "call-id": ids[-1]}))
    # A fresh cookie each: a repeated one is a retransmission, answered from the cache.
    return [b"%08x " % random.getrandbits(32) + b for b in bodies] + [b"nospace"], ids


def read_proc(pid):
    status = open("/proc/%d/status" % pid).read()
    field = lambda name: int(next(l.split()[1] for l in status.splitlines() if l.startswith(name)))
    return {
        "rss_kb": field("VmRSS:"),
        "threads": field("Threads:"),
        "fds": len(os.listdir("/proc/%d/fd" % pid)),
    }


def read_metrics(http):
    try:
        text = urllib.request.urlopen("http://%s/metrics" % http, timeout=5).read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        name, value = line.rsplit(" ", 1)
        try:
            out[name] = float(value)
        except ValueError:
            pass
    return out


def sample(pid, http):
    s = read_proc(pid)
    m = read_metrics(http)
    s["calls"] = int(m.get("ngmedia_calls_active", -1))
    s["streams"] = int(m.get("ngmedia_streams_active", -1))
    s["ports"] = int(m.get("ngmedia_ports_in_use", -1))
    s["drops"] = {k[len('ngmedia_packet_drops_total{reason="'):-2]: int(v)
                  for k, v in m.items() if k.startswith("ngmedia_packet_drops_total{")}
    s["ng_errors"] = int(sum(v for k, v in m.items()
                             if k.startswith("ngmedia_ng_requests_total{") and 'result="error"' in k))
    s["ng_dropped"] = int(sum(v for k, v in m.items() if k.startswith("ngmedia_ng_dropped_total")))
    return s


def show(t, s):
    print("%7.0f s  rss %7d kB  fds %5d  threads %3d  calls %5d  streams %5d  ports %5d"
          % (t, s["rss_kb"], s["fds"], s["threads"], s["calls"], s["streams"], s["ports"]),
          flush=True)


def wait_released(pid, http, base, limit_s):
    """Until calls, streams and ports are back at the baseline (bounded)."""
    deadline = time.monotonic() + limit_s
    while True:
        s = sample(pid, http)
        back = all(s[k] <= base[k] for k in ("calls", "streams", "ports", "fds", "threads"))
        if back or time.monotonic() > deadline:
            return s
        time.sleep(1)


def call_memory(ng, pid, n, transcode):
    """RSS per call: N extra calls of one kind, media flowing, RSS before and after."""
    before = read_proc(pid)["rss_kb"]
    calls = []
    for i in range(n):
        c = Call(10_000_000 + i + (n if transcode else 0), transcode, False)
        if c.set_up(ng, 3600):
            calls.append(c)
        else:
            c.close()
    for _ in range(10):  # half a second of media each way, so transcoders are built
        for c in calls:
            c.send_media(1)
            c.drain()
        time.sleep(0.05)
    time.sleep(1)
    after = read_proc(pid)["rss_kb"]
    for c in calls:
        ng(command="delete", **{"call-id": c.id})
        c.close()
    return (after - before) / max(len(calls), 1), len(calls)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--ng", default="127.0.0.1:2223")
    p.add_argument("--http", default="127.0.0.1:8080")
    p.add_argument("--calls", type=int, default=200, help="concurrent calls kept up")
    p.add_argument("--duration", type=float, default=600, help="seconds of churn")
    p.add_argument("--warmup", type=float, default=30, help="seconds before the baseline")
    p.add_argument("--lifetime", type=float, nargs=2, default=(5, 30), metavar=("MIN", "MAX"),
                   help="seconds a call lives")
    p.add_argument("--transcode", type=int, default=10, help="every Nth call transcodes (0: none)")
    p.add_argument("--record", type=int, default=0, help="every Nth call is recorded (0: none)")
    p.add_argument("--recording-dir", help="the daemon's --recording-dir: finished recordings "
                   "are counted and removed while the run goes on")
    p.add_argument("--pps", type=int, default=10, help="RTP packets per second per direction")
    p.add_argument("--hostile", type=int, default=50, help="hostile datagrams per tick")
    p.add_argument("--flood", type=int, default=500, help="datagrams in a flood burst (every 5 s)")
    p.add_argument("--port-range", type=int, nargs=2, metavar=("MIN", "MAX"),
                   help="the daemon's media ports: floods also hit the ones no call holds")
    p.add_argument("--sample", type=float, default=10, help="seconds between samples")
    p.add_argument("--rss-tolerance", type=float, default=5.0, help="percent")
    p.add_argument("--call-memory", type=int, default=0, metavar="N",
                   help="also measure RSS per idle and per transcoded call with N calls each")
    p.add_argument("--json", help="write the samples and the verdict here")
    args = p.parse_args()

    host, port = args.ng.rsplit(":", 1)
    ng = Ng((host, int(port)))
    if ng(command="ping").get("result") != b"pong":
        sys.exit("no pong from %s" % args.ng)
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.bind(("127.0.0.1", 0))
    stranger.setblocking(False)

    memory = {}
    if args.call_memory:
        # First, on the daemon as it started: later its allocator has room to spare.
        per_idle, n_idle = call_memory(ng, args.pid, args.call_memory, False)
        per_tc, n_tc = call_memory(ng, args.pid, args.call_memory, True)
        memory = {"rss_per_idle_call_kb": round(per_idle, 1),
                  "rss_per_transcoded_call_kb": round(per_tc, 1)}
        print("memory: %.1f kB per idle call (%d calls), %.1f kB per transcoded call (%d calls)"
              % (per_idle, n_idle, per_tc, n_tc), flush=True)
        time.sleep(2)

    idle = read_proc(args.pid)
    idle.update({k: v for k, v in sample(args.pid, args.http).items() if k not in idle})
    print("before: ", end="")
    show(0, idle)

    start = time.monotonic()
    calls, made, failed = [], 0, 0
    samples, base = [], None
    next_sample = start + args.warmup
    next_flood = start + 5
    tick = 0.1
    hostile_sent = garbage_sent = 0
    garbage_ids = []
    media_sent = media_received = 0
    recorded = recordings_seen = 0
    while time.monotonic() - start < args.duration:
        t0 = time.monotonic()
        # Churn: end calls whose time is up, keep the number up.
        # A call whose time is up sends nothing for one tick, so what it sent last has
        # arrived when it is drained and deleted.
        for c in [c for c in calls if c.ends <= t0 and not c.ending]:
            c.ending = True
        for c in [c for c in calls if c.ends + tick <= t0 and c.ending]:
            c.drain()
            ng(command="delete", **{"call-id": c.id})
            media_sent += c.sent
            media_received += c.received
            c.close()
            calls.remove(c)
        while len(calls) < args.calls:
            made += 1
            c = Call(made, args.transcode > 0 and made % args.transcode == 0,
                     args.record > 0 and made % args.record == 0)
            recorded += c.record
            if c.set_up(ng, random.uniform(*args.lifetime)):
                calls.append(c)
            else:
                failed += 1
                c.close()
            if time.monotonic() - t0 > tick:
                break
        for c in random.sample(calls, min(len(calls), max(1, args.calls // 100))):
            c.reoffer(ng)
        # Media: pps per direction, sent in ticks.
        per_tick = max(1, round(args.pps * tick))
        for c in calls:
            c.send_media(per_tick)
        # Hostile traffic at live ports (and RTCP ports), and at ports no call holds.
        live = [c.facing_a for c in calls] + [c.facing_b for c in calls]
        junk = malformed_packets()
        for i in range(args.hostile if live else 0):
            target = random.choice(live) + random.choice((0, 0, 1))
            payload = random.choice(junk) if i % 4 else rtp(i, i * 160, STRANGER_SSRC, 0, LOUD)
            try:
                stranger.sendto(payload, ("127.0.0.1", target))
                hostile_sent += 1
            except OSError:
                pass
        if t0 >= next_flood and live:
            next_flood = t0 + 5
            target = random.choice(live)
            for i in range(args.flood):
                try:
                    stranger.sendto(junk[i % len(junk)] or b"\x80", ("127.0.0.1", target))
                    hostile_sent += 1
                    if args.port_range:
                        free = random.randint(*args.port_range)
                        if free not in live:
                            stranger.sendto(b"\x80\x00" + os.urandom(6) + STRANGER_SSRC.to_bytes(4, "big")
                                           + os.urandom(160), ("127.0.0.1", free))
                            hostile_sent += 1
                except OSError:
                    pass
            for call_id in garbage_ids:  # the previous round's, answered by now
                ng.raw(b"%08x " % random.getrandbits(32) +
                       benc({"command": "delete", "call-id": call_id}))
            payloads, garbage_ids = ng_garbage()
            for g in payloads:
                ng.raw(g)
                garbage_sent += 1
        try:
            while True:
                stranger.recv(2048)
        except (BlockingIOError, OSError):
            pass
        for c in calls:
            c.drain()
        try:
            while True:
                ng.sock.setblocking(False)
                ng.sock.recv(65535)
        except (BlockingIOError, OSError):
            pass
        finally:
            ng.sock.setblocking(True)
            ng.sock.settimeout(2)
        now = time.monotonic()
        if now >= next_sample:
            next_sample = now + args.sample
            recordings_seen += sweep_recordings(args.recording_dir)
            s = sample(args.pid, args.http)
            s["t"] = now - start
            samples.append(s)
            if base is None:
                base = s
                print("baseline: ", end="")
            show(now - start, s)
        time.sleep(max(0.0, tick - (time.monotonic() - t0)))

    time.sleep(0.2)
    for c in calls:
        c.drain()
        ng(command="delete", **{"call-id": c.id})
        media_sent += c.sent
        media_received += c.received
        c.close()
    calls = []
    for call_id in garbage_ids:
        ng(command="delete", **{"call-id": call_id})
    end = wait_released(args.pid, args.http, idle, 60)
    time.sleep(1)  # the last recordings are written after their calls are gone
    recordings_seen += sweep_recordings(args.recording_dir)
    print("after:  ", end="")
    show(time.monotonic() - start, end)

    verdict = {"calls_made": made, "calls_failed": failed, "ng_timeouts": ng.failures,
               "hostile_datagrams": hostile_sent, "ng_garbage": garbage_sent,
               "calls_recorded": recorded, "recordings_written": recordings_seen,
               "media_sent": media_sent, "media_received": media_received,
               "media_loss_pct": round(100.0 * (media_sent - media_received) / max(media_sent, 1), 3)}
    rss = [s["rss_kb"] for s in samples[1:]] or [base["rss_kb"] if base else 0]
    if base:
        verdict["rss_baseline_kb"] = base["rss_kb"]
        verdict["rss_max_kb"] = max(rss)
        verdict["rss_growth_pct"] = round(100.0 * (max(rss) - base["rss_kb"]) / base["rss_kb"], 2)
        verdict["rss_after_kb"] = end["rss_kb"]
    verdict["drops"] = end["drops"]
    verdict["ng_errors"] = end["ng_errors"]
    problems = []
    for k in ("fds", "threads", "calls", "streams", "ports"):
        verdict[k + "_before"] = idle[k]
        verdict[k + "_after"] = end[k]
        if end[k] > idle[k]:
            problems.append("%s %d after, %d before" % (k, end[k], idle[k]))
    if base and verdict["rss_growth_pct"] > args.rss_tolerance:
        problems.append("RSS grew %.1f %% after warm-up" % verdict["rss_growth_pct"])
    if failed:
        problems.append("%d calls failed to set up" % failed)
    if args.recording_dir and recordings_seen < recorded:
        problems.append("%d recordings written for %d recorded calls" % (recordings_seen, recorded))

    verdict.update(memory)
    verdict["problems"] = problems
    print(json.dumps(verdict, indent=1, sort_keys=True))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"samples": samples, "verdict": verdict}, f, indent=1)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
