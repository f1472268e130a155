#!/usr/bin/env bash
# macOS: the PyInstaller spec's BUNDLE step makes build/installer/dist/Studio.app; this wraps it
# in dist/installer/studio-<version>-macos-<arch>.dmg (drag to Applications). Steps: installer/README.md.
# Env: PYTHON (default .venv/bin/python), CODESIGN_IDENTITY (optional: sign the .app and .dmg).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
BUILD=$ROOT/build/installer
cd "$ROOT"

"$PYTHON" installer/make_icon.py
"$PYTHON" -m PyInstaller --noconfirm --distpath "$BUILD/dist" --workpath "$BUILD/work" installer/studio.spec
APP=$BUILD/dist/Studio.app
VERSION=$("$PYTHON" -c 'import sys; sys.path.insert(0, "installer"); import bundle_contents; print(bundle_contents.version())')

if [ -n "${CODESIGN_IDENTITY:-}" ]; then
    codesign --force --deep --options runtime --timestamp --sign "$CODESIGN_IDENTITY" "$APP"
fi

STAGE=$BUILD/dmg
rm -rf "$STAGE" && mkdir -p "$STAGE" "$ROOT/dist/installer"
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
DMG=$ROOT/dist/installer/studio-$VERSION-macos-$(uname -m).dmg
rm -f "$DMG"
hdiutil create -volname "Studio $VERSION" -srcfolder "$STAGE" -fs HFS+ -format UDZO -ov "$DMG"
rm -rf "$STAGE"
if [ -n "${CODESIGN_IDENTITY:-}" ]; then
    codesign --sign "$CODESIGN_IDENTITY" --timestamp "$DMG"
fi

# The same offline check as on Linux, against the bundle inside the .app.
QT_QPA_PLATFORM=offscreen "$APP/Contents/MacOS/studio-app" --smoke-test
echo "$DMG"
