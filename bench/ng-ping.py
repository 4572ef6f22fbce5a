#!/usr/bin/env python3
"""Wait until an ng engine answers `ping`: exit 0 once it does, 1 after the timeout.

    bench/ng-ping.py HOST PORT [TIMEOUT_S]      (default 5 s)

The benchmark scripts start an engine and call this before they load it.
"""
import socket
import sys
import time

host, port = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + (float(sys.argv[3]) if len(sys.argv) > 3 else 5.0)
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.1)
while time.monotonic() < deadline:
    try:
        s.sendto(b"p d7:command4:pinge", (host, port))
        if b"pong" in s.recvfrom(100)[0]:
            sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
