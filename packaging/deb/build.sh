#!/usr/bin/env bash
# Build the ngmedia Debian package from this checkout:
#   bash packaging/deb/build.sh            -> target/debian/ngmedia_<version>_<arch>.deb
# Builds the release binaries (cargo build --release --bins --locked) unless
# NGMEDIA_DEB_SKIP_BUILD=1, computes the library dependencies with dpkg-shlibdeps (dpkg-dev),
# and assembles the package with dpkg-deb. Prints the package's path last.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT"

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
[ -n "$VERSION" ] || { echo "build.sh: no version in Cargo.toml" >&2; exit 1; }
ARCH=$(dpkg --print-architecture)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=$TARGET/debian
STAGE=$OUT/stage
DEB=$OUT/ngmedia_${VERSION}_${ARCH}.deb

if [ "${NGMEDIA_DEB_SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release --bins --locked
fi

rm -rf "$STAGE"
mkdir -p "$STAGE/DEBIAN"
install -D -m 0755 "$TARGET/release/ngmedia" "$STAGE/usr/bin/ngmedia"
install -D -m 0755 "$TARGET/release/ngmedia-ctl" "$STAGE/usr/bin/ngmedia-ctl"
strip --strip-unneeded "$STAGE/usr/bin/ngmedia" "$STAGE/usr/bin/ngmedia-ctl"
install -D -m 0644 "$HERE/ngmedia.service" "$STAGE/lib/systemd/system/ngmedia.service"
install -D -m 0644 samples/ngmedia.toml "$STAGE/etc/ngmedia/ngmedia.toml"
DOC=$STAGE/usr/share/doc/ngmedia
install -D -m 0644 README.md "$DOC/README.md"
for page in docs/*.md; do install -D -m 0644 "$page" "$DOC/$page"; done
install -D -m 0644 samples/kamailio-rtpengine.cfg "$DOC/examples/kamailio-rtpengine.cfg"
install -D -m 0644 samples/rtpengine.conf "$DOC/examples/rtpengine.conf"
install -D -m 0644 "$HERE/copyright" "$DOC/copyright"
printf 'ngmedia (%s) unstable; urgency=medium\n\n  * Built from %s.\n\n -- ngmedia developers <ngmedia@localhost>  %s\n' \
    "$VERSION" "$(git rev-parse --short HEAD 2>/dev/null || echo 'a source tree')" \
    "$(date -R -u -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")" \
    | gzip -9n > "$DOC/changelog.Debian.gz"
for script in postinst prerm postrm; do
    install -m 0755 "$HERE/$script" "$STAGE/DEBIAN/$script"
done
echo /etc/ngmedia/ngmedia.toml > "$STAGE/DEBIAN/conffiles"

# Library dependencies of the binaries, as dpkg-shlibdeps derives them (it wants a
# debian/control beside it).
SHLIBS=$(cd "$OUT" && mkdir -p debian && printf 'Source: ngmedia\n\nPackage: ngmedia\nArchitecture: any\n' > debian/control \
    && dpkg-shlibdeps -O -e"$STAGE/usr/bin/ngmedia" -e"$STAGE/usr/bin/ngmedia-ctl" 2>/dev/null \
    | sed -n 's/^shlibs:Depends=//p')
[ -n "$SHLIBS" ] || { echo "build.sh: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
SIZE=$(du -k -s --exclude=DEBIAN "$STAGE" | cut -f1)

cat > "$STAGE/DEBIAN/control" <<CONTROL
Package: ngmedia
Version: $VERSION
Architecture: $ARCH
Maintainer: ngmedia developers <ngmedia@localhost>
Installed-Size: $SIZE
Depends: $SHLIBS, adduser, procps
Recommends: redis-server
Section: net
Priority: optional
Description: media engine for SIP platforms, drop-in for rtpengine
 ngmedia relays RTP/RTCP for SIP calls behind NAT, bridges WebRTC (DTLS-SRTP, ICE)
 and SDES-SRTP to plain RTP, transcodes between G.711, G.722, G.729 and Opus,
 plays music on hold, records calls and delivers lawful-interception copies.
 A SIP proxy (Kamailio, OpenSIPS) drives it over rtpengine's ng protocol, so the
 proxy's rtpengine module works unchanged.
CONTROL

dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$DEB" >/dev/null
echo "$DEB"
