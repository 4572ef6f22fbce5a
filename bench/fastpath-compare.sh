#!/usr/bin/env bash
# Kernel fast path against user-space relaying, across a veth pair, side by side in one run:
# ngmedia's fast path at XDP (`xdp`: forwarding on in the engine's namespace, so the veth gets
# the XDP program), the fast path at TC ingress (`tc`: forwarding off), ngmedia with
# `--fast-path=off` (`user`), and rtpengine `--table=-1` (its kernel module cannot be built
# here). Per-process CPU misses the kernel's work, which is all the fast path does: the
# figure that counts is the engine side's CPU per relayed packet, kernel work included (below).
#
# Topology: the engine in namespace ngm-bench-e (10.81.0.1 on `ngbe0`), the generator
# (ngload) in ngm-bench-g (10.81.0.2 on `ngbg0`). Media enters the engine's namespace on
# `ngbe0` and leaves on it again. Both veths receive in NAPI (GRO on and TSO off, which a veth
# needs for NAPI without XDP), threaded, without RPS: all the receive work
# of a side — XDP, TC, the IP/UDP stack up to the socket — runs in that veth's NAPI thread,
# pinned to the side's core at a real-time priority (as softirq work has over tasks): the
# engine, its threads and `napi/ngbe0-*` on CPU 0, the generator and `napi/ngbg0-*` on
# CPU 1. The engine side's cost is then exact whatever else the machine runs: the CPU time
# (schedstat) of the engine's threads plus that of its NAPI thread, per relayed packet
# ("engine-side µs/pkt"). `cpusoak.py` still gives CPU 0's system-wide busy time, which
# counts every other process on that core as well.
#
#   bench/fastpath-compare.sh              # RUNS below, 30 s each
#   RUNS="1000:10" SECONDS_=20 bench/fastpath-compare.sh
#   MODES="xdp tc user" bench/fastpath-compare.sh      # without rtpengine
#   ENGINE_ARGS="--endpoint-learning immediate" ...   # extra ngmedia options
#   RTPENGINE_ARGS="--endpoint-learning=immediate" ... # extra rtpengine options
#   IDLE=1 ...   # also soak an idle CPU 0 before each call count (other load on the machine)
#
# RUNS lists calls:ptime pairs. The default holds the packet rate near 100k/s from 1,000 to
# 10,000 calls (ptime 20, 100, 180 ms: payloads up to 1,440 bytes, unfragmented on a 1,500
# MTU), which shows how the cost grows with the number of streams rather than with the rate
# (one generator core tops out near 125k packets/s).
#
# Results: target/bench/fastpath/<mode>-<calls>-p<ptime>.{json,soak.json,kernel,txt} and a
# table.
# Needs root (namespaces, BPF) and a release build (built here if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
RUNS=${RUNS:-"500:20 1000:20 5000:100 10000:180"}
SECONDS_=${SECONDS_:-30}
MODES=${MODES:-"xdp tc user rtpengine"}
ENGINE_ARGS=${ENGINE_ARGS:-}
RTPENGINE_ARGS=${RTPENGINE_ARGS:-}
IDLE=${IDLE:-0}
E_DEV=ngbe0
G_DEV=ngbg0
OUT=${OUT:-target/bench/fastpath}
NS_E=ngm-bench-e
NS_G=ngm-bench-g
E_IP=10.81.0.1
G_IP=10.81.0.2
NG_PORT=22232
HTTP_PORT=22282
mkdir -p "$OUT"

# ENGINE_BIN picks another ngmedia binary (then nothing is built for it).
if [ -z "${ENGINE_BIN:-}" ]; then
    cargo build --release --bin ngmedia >/dev/null
    ENGINE_BIN=$PWD/target/release/ngmedia
fi
# NGLOAD picks an ngload binary already built.
if [ -z "${NGLOAD:-}" ]; then
    CARGO_TARGET_DIR=$PWD/target/ngload cargo build --release --manifest-path "$SHARED/loadgen/Cargo.toml" >/dev/null
    NGLOAD=$PWD/target/ngload/release/ngload
fi

cleanup() {
    [ -n "${EPID:-}" ] && kill "$EPID" 2>/dev/null && wait "$EPID" 2>/dev/null
    ip netns del "$NS_E" 2>/dev/null || true
    ip netns del "$NS_G" 2>/dev/null || true
}
trap cleanup EXIT
cleanup
ip netns add "$NS_E"
ip netns add "$NS_G"
ip -n "$NS_E" link add "$E_DEV" type veth peer name "$G_DEV" netns "$NS_G"
ip -n "$NS_E" addr add "$E_IP/24" dev "$E_DEV"
ip -n "$NS_G" addr add "$G_IP/24" dev "$G_DEV"
for ns in "$NS_E" "$NS_G"; do ip -n "$ns" link set lo up; done
ip -n "$NS_E" link set "$E_DEV" up
ip -n "$NS_G" link set "$G_DEV" up
# Receive processing in each veth's NAPI thread (see above).
# A veth hands a datagram to its peer's NAPI only if the sender has no TSO (or the receiver
# forwards UDP GRO).
for side in "$NS_E $E_DEV" "$NS_G $G_DEV"; do
    set -- $side
    ip netns exec "$1" python3 bench/ethtool-set.py "$2" gro on
    ip netns exec "$1" python3 bench/ethtool-set.py "$2" tso off
done

# Forwarding in the engine's namespace: on for `xdp` (XDP's route lookup needs it), off
# otherwise (the fast path then stays at TC).
forwarding() {
    ip netns exec "$NS_E" sysctl -qw "net.ipv4.conf.all.forwarding=$1"
}

# NAPI of both veths threaded, the threads pinned to their side's core and given a real-time
# priority; E_NAPI is the engine side's thread (as a list of pids).
pin_napi() {
    ip netns exec "$NS_E" sh -c "echo 1 > /sys/class/net/$E_DEV/threaded" || return 1
    ip netns exec "$NS_G" sh -c "echo 1 > /sys/class/net/$G_DEV/threaded" || return 1
    local pid comm
    E_NAPI=
    while read -r pid comm; do
        case "$comm" in
        napi/"$E_DEV"-*)
            taskset -pc 0 "$pid" >/dev/null && chrt -f -p 50 "$pid"
            E_NAPI="$E_NAPI $pid"
            ;;
        napi/"$G_DEV"-*) taskset -pc 1 "$pid" >/dev/null && chrt -f -p 50 "$pid" ;;
        esac
    done < <(ps -e -o pid=,comm=)
    [ -n "$E_NAPI" ]
}

# CPU time (ns) of the engine's threads and of its side's NAPI thread, and the packets the
# engine's veth has received (what the generator got through to the engine).
engine_side_ns() {
    cat /proc/"$EPID"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f ", s}'
    for p in $E_NAPI; do cat /proc/"$p"/schedstat; done 2>/dev/null | awk '{s += $1} END {printf "%.0f ", s}'
    ip -n "$NS_E" -s link show dev "$E_DEV" | awk '/RX:/ {getline; print $2}'
}

start_engine() {
    case "$1" in
    xdp | tc | user)
        local fp=on
        [ "$1" = user ] && fp=off
        if [ "$1" = xdp ]; then forwarding 1; else forwarding 0; fi
        # shellcheck disable=SC2086
        ip netns exec "$NS_E" taskset -c 0 "$ENGINE_BIN" --config none --interface "$E_IP" \
            --listen-ng "$E_IP:$NG_PORT" --listen-http "127.0.0.1:$HTTP_PORT" --port-min 20000 \
            --port-max 60000 --delete-delay 0 --num-threads 1 --log-level info \
            --fast-path "$fp" $ENGINE_ARGS 2>"$OUT/engine-$1.log" &
        ;;
    rtpengine)
        forwarding 0
        # shellcheck disable=SC2086
        ip netns exec "$NS_E" taskset -c 0 rtpengine --config-file=none --table=-1 \
            --interface="$E_IP" --listen-ng="$E_IP:$NG_PORT" --port-min=20000 --port-max=60000 \
            --foreground --log-stderr --log-level=4 --delete-delay=0 $RTPENGINE_ARGS &
        ;;
    esac
    EPID=$!
    ip netns exec "$NS_G" python3 bench/ng-ping.py "$E_IP" "$NG_PORT" || {
        echo "engine $1 did not answer ping" >&2
        return 1
    }
    if [ "$1" = xdp ]; then
        grep -q "$E_DEV=xdp" "$OUT/engine-$1.log" || {
            echo "xdp: the engine did not attach at XDP:" >&2
            grep "fast path" "$OUT/engine-$1.log" >&2
            return 1
        }
    fi
    pin_napi || {
        echo "cannot thread the veths' NAPI" >&2
        return 1
    }
    return 0
}

# Packets the kernel relayed (or, with `ngmedia_fast_path_xdp_packets_total` as $1, those
# of them relayed at XDP), from ngmedia's metrics (0 for other engines).
kernel_packets() {
    ip netns exec "$NS_E" python3 - 127.0.0.1 "$HTTP_PORT" "${1:-ngmedia_fast_path_packets_total}" <<'PY' 2>/dev/null || echo 0
import sys, urllib.request
try:
    text = urllib.request.urlopen("http://%s:%s/metrics" % (sys.argv[1], sys.argv[2]), timeout=2).read().decode()
except OSError:
    print(0); sys.exit()
print(sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith(sys.argv[3] + " ")))
PY
}

# Packets dropped on the engine's side, for the record: the engine namespace's UDP counters
# (socket buffers) and CPU 0's backlog drops (softnet_stat, second column).
drops() {
    ip netns exec "$NS_E" awk '/^Udp: [0-9]/ {print "udp_in", $2, "rcvbuf_errors", $6, "sndbuf_errors", $7}' /proc/net/snmp
    local hex
    hex=$(awk 'NR == 1 {print $2}' /proc/net/softnet_stat)
    echo "cpu0_backlog_drops $((16#$hex))"
    # Each veth's RX/TX counters (`ip -s`: bytes packets errors dropped ...).
    ip -n "$NS_E" -s link show dev "$E_DEV" | awk -v d="$E_DEV" '/RX:|TX:/ {k = $1; getline; print d, k, "packets", $2, "dropped", $4}'
    ip -n "$NS_G" -s link show dev "$G_DEV" | awk -v d="$G_DEV" '/RX:|TX:/ {k = $1; getline; print d, k, "packets", $2, "dropped", $4}'
}

# Steady state only: the soak window opens once setup is done and the learning window (3 s)
# has let the fast path take the streams, and closes before the media phase ends, so call
# setup and teardown are not in the figure. Packets in the window = the offered rate (calls x
# 2 directions x 1000/ptime) x its length, which holds while loss is 0 (the table shows it).
WINDOW=$((SECONDS_ - 8))
[ "$WINDOW" -ge 5 ] || { echo "SECONDS_ must be at least 13" >&2; exit 2; }
# TABLE_ONLY=1: print the table of the results already in $OUT, run nothing.
[ "${TABLE_ONLY:-0}" = 1 ] && RUN_PAIRS="" || RUN_PAIRS=$RUNS
for pair in $RUN_PAIRS; do
    calls=${pair%:*}
    PTIME=${pair#*:}
    if [ "$IDLE" = 1 ]; then
        # What CPU 0 is busy with when nothing of ours runs: the rest of the machine's load.
        python3 "$SHARED/loadgen/cpusoak.py" --cpus 0,1 --json "$OUT/idle-$calls-p$PTIME.soak.json" \
            -- sleep "$WINDOW" >/dev/null
    fi
    for mode in $MODES; do
        run="$mode-$calls-p$PTIME"
        start_engine "$mode"
        ip netns exec "$NS_G" taskset -c 1 "$NGLOAD" --ng "$E_IP:$NG_PORT" --local-addr "$G_IP" \
            --local-ports 20000-60000 --calls "$calls" --seconds "$SECONDS_" --ptime "$PTIME" \
            --pid "$EPID" --max-calls 10000 --json "$OUT/$run.json" >"$OUT/$run.txt" 2>&1 &
        GPID=$!
        for _ in $(seq 600); do
            grep -q '^setup:' "$OUT/$run.txt" 2>/dev/null && break
            kill -0 "$GPID" 2>/dev/null || break
            sleep 0.2
        done
        # The engine side's CPU and packets over a window of the media phase timed apart
        # from the slower readings below (HTTP, soaker), which a loaded machine can delay.
        (
            sleep 3
            a=$(engine_side_ns)
            ta=$(date +%s.%N)
            sleep "$((SECONDS_ - 6))"
            b=$(engine_side_ns)
            tb=$(date +%s.%N)
            echo "$a $b $ta $tb" >"$OUT/$run.engine-side"
        ) &
        SIDE=$!
        sleep 5
        drops >"$OUT/$run.drops0"
        # The engine's BPF maps (type, size, kernel memory), for the memory per entry.
        for f in /proc/"$EPID"/fdinfo/*; do
            awk '/^map_type/ {t = $2} /^max_entries/ {n = $2} /^memlock/ {m = $2}
                 END {if (t != "") print "map_type", t, "max_entries", n, "memlock", m}' "$f"
        done 2>/dev/null >"$OUT/$run.maps" || true
        cat /proc/loadavg >"$OUT/$run.loadavg"
        k0=$(kernel_packets)
        x0=$(kernel_packets ngmedia_fast_path_xdp_packets_total)
        t0=$(date +%s.%N)
        python3 "$SHARED/loadgen/cpusoak.py" --cpus 0,1 --json "$OUT/$run.soak.json" -- sleep "$WINDOW" >/dev/null
        wait "$SIDE" || true
        k1=$(kernel_packets)
        x1=$(kernel_packets ngmedia_fast_path_xdp_packets_total)
        t1=$(date +%s.%N)
        wait "$GPID" || true
        drops >"$OUT/$run.drops1"
        # The whole run's, once the calls are deleted (their counters folded in).
        kf=$(kernel_packets)
        xf=$(kernel_packets ngmedia_fast_path_xdp_packets_total)
        # Kernel-relayed packets between the two readings, how long that was, and the run's.
        echo "$k0 $k1 $t0 $t1 $x0 $x1 $kf $xf" >"$OUT/$run.kernel"
        kill "$EPID" 2>/dev/null || true
        wait "$EPID" 2>/dev/null || true
        EPID=
    done
done

python3 - "$OUT" "$MODES" $RUNS <<'PY'
import json, os, sys
out, modes, runs = sys.argv[1], sys.argv[2].split(), [r.split(":") for r in sys.argv[3:]]
names = {"xdp": "ngmedia fast path, XDP", "tc": "ngmedia fast path, TC", "fast": "ngmedia fast path, TC",
         "user": "ngmedia user space", "rtpengine": "rtpengine --table=-1"}
print("| engine | calls | ptime ms | offered pps | arrived at the engine, pps | loss % | kernel-relayed % of the run (at XDP) | engine-side µs/pkt (engine threads + NAPI thread) | engine-side % of a core | CPU 0 busy, system-wide | engine process µs/pkt (ngload) | load avg |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for c, ptime in runs:
    try:
        idle = json.load(open(os.path.join(out, "idle-%s-p%s.soak.json" % (c, ptime))))
        print("| (idle CPU 0: other load) | | | | | | | | | %.1f %% | | |" % idle["cpus"]["cpu0"]["busy_pct"])
    except (OSError, ValueError):
        pass
    for m in modes:
        run = "%s-%s-p%s" % (m, c, ptime)
        try:
            d = json.load(open(os.path.join(out, run + ".json")))
            soak = json.load(open(os.path.join(out, run + ".soak.json")))
        except (OSError, ValueError):
            print("| %s | %s | %s | (no result: see %s.txt) | | | | | |" % (names[m], c, ptime, run))
            continue
        P, E = d["packets"], d.get("engine_proc") or {}
        # The calls that were set up send, not the ones asked for.
        pps = d["calls_ok"] * 2 * 1000 / int(ptime)
        cpu0 = soak["cpus"]["cpu0"]
        pkts = pps * cpu0["window_s"]
        k = list(map(float, open(os.path.join(out, run + ".kernel")).read().split()))
        k0, k1, t0, t1 = k[:4]
        x0, x1 = (k[4], k[5]) if len(k) >= 6 else (0, 0)
        # Of all the packets the run relayed (a share over the soak window alone is off when
        # slow readings on a loaded machine let the window outlast the media).
        kf, xf = (k[6], k[7]) if len(k) >= 8 else (k1, x1)
        kernel_share = kf / max(P["received"], 1)
        xdp_share = xf / max(P["received"], 1)
        try:
            load = open(os.path.join(out, run + ".loadavg")).read().split()[0]
        except OSError:
            load = ""
        try:
            e0, n0, r0, e1, n1, r1, c0, c1 = map(float, open(os.path.join(out, run + ".engine-side")).read().split())
            side_ns, side_s, rx = (e1 - e0) + (n1 - n0), c1 - c0, max(r1 - r0, 1)
            side = "%.2f (%.2f + %.2f)" % (side_ns / 1e3 / rx, (e1 - e0) / 1e3 / rx, (n1 - n0) / 1e3 / rx)
            side_pct = "%.1f %%" % (100.0 * side_ns / 1e9 / side_s)
            arrived = "%.0f" % (rx / side_s)
        except (OSError, ValueError):
            side, side_pct, arrived = "", "", ""
        print("| %s | %s/%s | %s | %.0f | %s | %.3f | %.1f (%.1f) | %s | %s | %.1f %% | %s | %s |" % (
            names[m], d["calls_ok"], c, ptime, pps, arrived, P["loss_pct"], 100.0 * kernel_share, 100.0 * xdp_share,
            side, side_pct, cpu0["busy_pct"], E.get("cpu_us_per_relayed_packet"), load))
PY
