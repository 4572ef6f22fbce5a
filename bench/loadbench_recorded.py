#!/usr/bin/env python3
"""loadbench.py with every call recorded: each `offer` carries `record call: yes`, so the
daemon records the call from its first packet (the same as Kamailio's `record-call`).

    python3 bench/loadbench_recorded.py [loadbench.py options...]

Everything else (phases, pacing, the one-line JSON summary) is loadbench.py's own; the
harness folder defaults to ../shared/harness and can be set with LOADBENCH_DIR.
"""
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
harness = os.environ.get("LOADBENCH_DIR", os.path.join(here, "..", "..", "..", "shared", "harness"))
if not os.path.isfile(os.path.join(harness, "loadbench.py")):
    harness = "/work/shared/harness"
sys.path.insert(0, harness)

import ngclient  # noqa: E402
import loadbench  # noqa: E402

_request = ngclient.NgClient.request


def _recorded(self, d, *args, **kwargs):
    if d.get("command") == "offer":
        d = dict(d, **{"record call": "yes"})
    return _request(self, d, *args, **kwargs)


ngclient.NgClient.request = _recorded

if __name__ == "__main__":
    sys.exit(loadbench.main(sys.argv[1:]))
