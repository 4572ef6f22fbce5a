#!/usr/bin/env bash
# The Debian package end to end, as root: build it, install it with apt into a fresh Debian
# root made by debootstrap, check the unit with systemd-analyze, run the installed daemon as
# its own user (readiness, ng ping, SIGHUP reload, clean SIGTERM), then remove and purge it
# and check what stays and what goes.
#   bash packaging/deb/test.sh [path/to/ngmedia_*.deb]
# NGMEDIA_DEB_MIRROR overrides the Debian mirror debootstrap uses; NGMEDIA_DEB_BASE names a
# pristine debootstrap root to copy instead (faster when run again and again).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
DEB=${1:-$(bash "$HERE/build.sh" | tail -n1)}
SUITE=$(. /etc/os-release && echo "$VERSION_CODENAME")
MIRROR=${NGMEDIA_DEB_MIRROR:-http://deb.debian.org/debian}
R=$(mktemp -d /tmp/ngmedia-debroot.XXXXXX)
# mktemp makes it 0700: the root of a system must be traversable by its users (ngmedia).
chmod 0755 "$R"
DAEMON=

cleanup() {
    [ -n "$DAEMON" ] && kill -KILL "$DAEMON" 2>/dev/null || true
    umount "$R/proc" 2>/dev/null || true
    # Never delete through a mount that is still there.
    if grep -q " $R/" /proc/mounts; then
        echo "deb test: $R still has mounts, left in place" >&2
    else
        rm -rf "$R"
    fi
}
trap cleanup EXIT
fail() { echo "deb test: $*" >&2; exit 1; }
in_root() { chroot "$R" "$@"; }

if [ -n "${NGMEDIA_DEB_BASE:-}" ]; then
    echo "== copy $NGMEDIA_DEB_BASE into $R"
    cp -a "$NGMEDIA_DEB_BASE/." "$R/"
else
    echo "== debootstrap $SUITE (minbase) into $R"
    debootstrap --variant=minbase "$SUITE" "$R" "$MIRROR" >"$R.log" 2>&1 || { tail -n 20 "$R.log"; fail "debootstrap failed"; }
    rm -f "$R.log"
fi
mount -t proc proc "$R/proc"

echo "== install $(basename "$DEB")"
cp "$DEB" "$R/tmp/ngmedia.deb"
in_root apt-get update -q >/dev/null
# systemd comes along only for `systemd-analyze verify` below: the package works without it.
DEBIAN_FRONTEND=noninteractive in_root apt-get install -y -q --no-install-recommends \
    /tmp/ngmedia.deb systemd >/dev/null 2>"$R/tmp/apt.err" || { cat "$R/tmp/apt.err"; fail "apt-get install failed"; }
in_root getent passwd ngmedia >/dev/null || fail "no ngmedia user"
[ "$(in_root stat -c %U:%G:%a /var/lib/ngmedia)" = ngmedia:ngmedia:750 ] || fail "state folder: $(in_root stat -c %U:%G:%a /var/lib/ngmedia)"
in_root dpkg-query -W -f='${Conffiles}\n' ngmedia | grep -q '/etc/ngmedia/ngmedia.toml' || fail "config is not a conffile"
[ -L "$R/etc/systemd/system/multi-user.target.wants/ngmedia.service" ] || fail "unit not enabled"
for f in /usr/bin/ngmedia /usr/bin/ngmedia-ctl /lib/systemd/system/ngmedia.service /usr/share/doc/ngmedia/copyright; do
    [ -e "$R$f" ] || fail "$f not installed"
done

echo "== systemd-analyze verify"
systemd-analyze verify --root="$R" /lib/systemd/system/ngmedia.service

echo "== run the installed daemon as ngmedia"
NOTIFY=$R/run/ngmedia-notify.sock
python3 - "$NOTIFY" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(30)
with open(sys.argv[1] + ".log", "w") as log:
    try:
        while True:
            log.write(s.recv(512).decode() + "\n")
            log.flush()
    except socket.timeout:
        pass
PY
LISTENER=$!
for _ in $(seq 50); do [ -S "$NOTIFY" ] && break; sleep 0.1; done
chmod 0666 "$NOTIFY"
NG=127.0.0.1:22323
NOTIFY_SOCKET=/run/ngmedia-notify.sock chroot --userspec=ngmedia:ngmedia "$R" /usr/bin/ngmedia \
    --config /etc/ngmedia/ngmedia.toml --interface 127.0.0.1 --listen-ng "$NG" \
    --listen-http 127.0.0.1:22380 --port-min 32500 --port-max 32599 >"$R/tmp/ngmedia.log" 2>&1 &
DAEMON=$!
reports() { cat "$NOTIFY.log" 2>/dev/null || true; }
for _ in $(seq 100); do reports | grep -q '^READY=1$' && break; sleep 0.1; done
reports | grep -q '^READY=1$' || { cat "$R/tmp/ngmedia.log"; fail "no READY=1"; }
python3 - "$NG" <<'PY' || { cat "$R/tmp/ngmedia.log"; fail "no pong"; }
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(b"deb_1 d7:command4:pinge", (host, int(port)))
assert b"pong" in s.recv(4096)
PY
[ "$(in_root stat -c %U /var/lib/ngmedia/media)" = ngmedia ] || fail "media library not created by the daemon"
kill -HUP "$DAEMON"
for _ in $(seq 50); do grep -q "media library reloaded" "$R/tmp/ngmedia.log" && break; sleep 0.1; done
grep -q "media library reloaded" "$R/tmp/ngmedia.log" || fail "SIGHUP did not reload"
kill -TERM "$DAEMON"
wait "$DAEMON" || { cat "$R/tmp/ngmedia.log"; fail "daemon did not exit 0 on SIGTERM"; }
DAEMON=
kill "$LISTENER" 2>/dev/null || true

echo "== remove"
in_root dpkg -r ngmedia >/dev/null
[ ! -e "$R/usr/bin/ngmedia" ] || fail "binary left after remove"
[ -f "$R/etc/ngmedia/ngmedia.toml" ] || fail "remove took the conffile"
[ -d "$R/var/lib/ngmedia" ] || fail "remove took the state folder"

echo "== purge"
in_root dpkg -P ngmedia >/dev/null
[ ! -e "$R/etc/ngmedia" ] || fail "/etc/ngmedia left after purge"
[ ! -e "$R/var/lib/ngmedia" ] || fail "/var/lib/ngmedia left after purge"
[ ! -e "$R/lib/systemd/system/ngmedia.service" ] || fail "unit left after purge"
[ ! -e "$R/etc/systemd/system/multi-user.target.wants/ngmedia.service" ] || fail "unit still enabled after purge"
if in_root dpkg -s ngmedia >/dev/null 2>&1; then fail "still known to dpkg"; fi
echo "== debian package: install, run, remove, purge all fine"
