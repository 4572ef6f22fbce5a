#!/usr/bin/env python3
"""CPU cost of music on hold: N calls, each with hold music playing toward one party.

Starts nothing itself: point it at a running daemon (ng + HTTP on loopback). It uploads a
sample to the media library, sets up N two-party calls whose endpoints are sockets of this
script (received packets are counted, not decoded), starts `play media` (repeating) toward
the callee of each call, then samples the daemon's CPU time from /proc for DURATION seconds
and prints packets/s and microseconds of daemon CPU per generated packet.

    bench/moh-bench.py --pid $(pidof ngmedia) --calls 500 --duration 10
"""
import argparse, json, os, random, select, socket, sys, time, urllib.request

from bencode import bdec, benc


class Ng:
    def __init__(self, addr):
        self.addr = addr
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(2)

    def __call__(self, **kw):
        cookie = "%08x" % random.getrandbits(32)
        self.sock.sendto(cookie.encode() + b" " + benc(kw), self.addr)
        data, _ = self.sock.recvfrom(65535)
        reply, _ = bdec(data.split(b" ", 1)[1])
        if reply.get("result") != b"ok":
            sys.exit("ng %s failed: %r" % (kw.get("command"), reply))
        return reply


def sdp(port):
    return ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=audio %d RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
            "a=ptime:20\r\na=sendrecv\r\n" % port)


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pid", type=int, required=True, help="daemon process id (for /proc CPU time)")
    ap.add_argument("--ng", default="127.0.0.1:2223")
    ap.add_argument("--http", default="127.0.0.1:8080")
    ap.add_argument("--token", default=None)
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--file", default=os.path.join(os.path.dirname(__file__), "../samples/media/hold-tune.wav"))
    a = ap.parse_args()
    host, port = a.ng.split(":")
    ng = Ng((host, int(port)))

    body = open(a.file, "rb").read()
    req = urllib.request.Request("http://%s/media?name=bench" % a.http, data=body, method="POST")
    if a.token:
        req.add_header("Authorization", "Bearer " + a.token)
    media_id = json.load(urllib.request.urlopen(req))["id"]

    socks, tag = [], "%06x" % random.getrandbits(24)
    for i in range(a.calls):
        sa, sb = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2))
        for s in (sa, sb):
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
        cid = "moh-bench-%s-%d" % (tag, i)
        ng(command="offer", **{"call-id": cid, "from-tag": "a", "sdp": sdp(sa.getsockname()[1])})
        ng(command="answer", **{"call-id": cid, "from-tag": "a", "to-tag": "b", "sdp": sdp(sb.getsockname()[1])})
        ng(command="play media", **{"call-id": cid, "from-tag": "b", "db-id": media_id, "repeat-times": 1000000})
        socks.append(sb)
    # Let start-up bursts settle, then measure.
    time.sleep(1.0)
    for s in socks:  # what queued during set-up does not count
        try:
            while True:
                s.recv(2048)
        except BlockingIOError:
            pass
    hz = os.sysconf("SC_CLK_TCK")
    received = 0
    t0, c0 = time.time(), cpu_ticks(a.pid)
    while time.time() - t0 < a.duration:
        ready, _, _ = select.select(socks, [], [], 0.1)
        for s in ready:
            try:
                while True:
                    s.recv(2048)
                    received += 1
            except BlockingIOError:
                pass
    elapsed, cpu = time.time() - t0, (cpu_ticks(a.pid) - c0) / hz
    for i in range(a.calls):
        ng(command="delete", **{"call-id": "moh-bench-%s-%d" % (tag, i), "delete-delay": 0})
    rate = received / elapsed
    print("calls=%d received=%d pkt/s=%.0f (expected %.0f) daemon_cpu=%.1f%% us/packet=%.2f" % (
        a.calls, received, rate, a.calls * 50.0, 100 * cpu / elapsed, 1e6 * cpu / max(received, 1)))


if __name__ == "__main__":
    main()
