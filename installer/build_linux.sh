#!/usr/bin/env bash
# Builds the Linux installers from a frozen bundle:
#   dist/installer/studio_<version>_<arch>.deb        /opt/studio, /usr/bin/studio{,-app}, menu entry, icon
#   dist/installer/studio-<version>-linux-<arch>.tar.gz  the same bundle, portable (run studio/studio-app)
# Usage: installer/build_linux.sh            (PyInstaller freeze, then package)
#        SKIP_FREEZE=1 installer/build_linux.sh  (package the bundle already in build/installer/dist/studio)
# Env: PYTHON (default .venv/bin/python), DEB_COMPRESSION (default zstd; xz for dpkg < 1.21.18).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
BUILD=$ROOT/build/installer
OUT=$ROOT/dist/installer
BUNDLE=$BUILD/dist/studio
DEB_COMPRESSION=${DEB_COMPRESSION:-zstd}

cd "$ROOT"
VERSION=$("$PYTHON" -c 'import sys; sys.path.insert(0, "installer"); import bundle_contents; print(bundle_contents.version())')
ARCH=$(dpkg --print-architecture)

if [ "${SKIP_FREEZE:-0}" != 1 ]; then
    echo "== freezing with PyInstaller (log: $BUILD/pyinstaller.log)"
    mkdir -p "$BUILD"
    nice -n 10 "$PYTHON" -m PyInstaller --noconfirm --log-level WARN \
        --distpath "$BUILD/dist" --workpath "$BUILD/work" installer/studio.spec >"$BUILD/pyinstaller.log" 2>&1 \
        || { tail -40 "$BUILD/pyinstaller.log"; exit 1; }
fi
[ -x "$BUNDLE/studio" ] || { echo "no frozen bundle at $BUNDLE" >&2; exit 1; }
ln -sfn studio "$BUNDLE/studio-app"

echo "== staging the .deb"
STAGE=$BUILD/deb
rm -rf "$STAGE"
mkdir -p "$STAGE/DEBIAN" "$STAGE/opt" "$STAGE/usr/bin" "$STAGE/usr/share/applications" \
    "$STAGE/usr/share/icons/hicolor/scalable/apps"
cp -a "$BUNDLE" "$STAGE/opt/studio"
ln -s ../../opt/studio/studio "$STAGE/usr/bin/studio"  # relative: valid inside any install root
ln -s ../../opt/studio/studio-app "$STAGE/usr/bin/studio-app"
install -m 644 installer/linux/studio.desktop "$STAGE/usr/share/applications/studio.desktop"
install -m 644 resources/icon.svg "$STAGE/usr/share/icons/hicolor/scalable/apps/studio.svg"
install -m 755 installer/linux/postinst installer/linux/postrm "$STAGE/DEBIAN/"
cat >"$STAGE/DEBIAN/control" <<EOF
Package: studio
Version: $VERSION
Architecture: $ARCH
Maintainer: Studio maintainers <studio@localhost>
Installed-Size: $(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
Depends: libc6 (>= 2.28), libgl1, libegl1, libfontconfig1, libxkbcommon0, libdbus-1-3, libglib2.0-0 | libglib2.0-0t64
Recommends: libxcb-cursor0, libxkbcommon-x11-0, libportaudio2
Section: graphics
Priority: optional
Homepage: https://example.invalid/studio
Description: offline desktop studio for generative models
 Generate, edit and interpolate images and sounds with VAEs, flows, GANs,
 diffusion and autoregressive models. Ships its models and runs on the CPU;
 never touches the network.
EOF

mkdir -p "$OUT"
DEB=$OUT/studio_${VERSION}_${ARCH}.deb
TARBALL=$OUT/studio-${VERSION}-linux-${ARCH}.tar.gz
echo "== $DEB"
dpkg-deb --root-owner-group -Z"$DEB_COMPRESSION" --build "$STAGE" "$DEB" >/dev/null
echo "== $TARBALL"
GZIP_TOOL=$(command -v pigz || command -v gzip)
tar -C "$BUILD/dist" --owner=0 --group=0 -cf - studio | nice -n 10 "$GZIP_TOOL" -6 >"$TARBALL"
rm -rf "$STAGE"

echo "bundle    $(du -sh "$BUNDLE" | cut -f1)  $BUNDLE"
echo "deb       $(du -h "$DEB" | cut -f1)  $DEB"
echo "tarball   $(du -h "$TARBALL" | cut -f1)  $TARBALL"
