#!/usr/bin/env python3
"""Set one ethtool flag of a network device (what `ethtool -K DEV gro on|off` does), for
machines without the ethtool binary: ethtool-set.py DEV gro|tso|tx on|off (in the device's
network namespace, e.g. under `ip netns exec`)."""
import array, fcntl, socket, struct, sys

SIOCETHTOOL = 0x8946
SET = {"gro": 0x2C, "tso": 0x1F, "tx": 0x17}  # ETHTOOL_SGRO, ETHTOOL_STSO, ETHTOOL_STXCSUM

dev, what, value = sys.argv[1], sys.argv[2], sys.argv[3] == "on"
buf = array.array("I", [SET[what], int(value)])
ifr = struct.pack("16sP", dev.encode(), buf.buffer_info()[0]) + bytes(16)
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    fcntl.ioctl(s.fileno(), SIOCETHTOOL, ifr)
