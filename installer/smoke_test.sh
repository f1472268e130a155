#!/usr/bin/env bash
# Builds the .deb, installs it, runs the installed app offline and offscreen, uninstalls it.
#   installer/smoke_test.sh               build, then install into a temporary root (dpkg --root)
#   CI=true installer/smoke_test.sh       build, then install into this machine (dpkg -i / dpkg -r)
#   SKIP_BUILD=1 installer/smoke_test.sh  test the .deb already in dist/installer
# Checks: the window opens (--quit-after-show), `studio-app --smoke-test` generates with every
# shipped model into a fresh project, `studio generate ppca-mnist --out X.png` writes a PNG,
# the install folder is byte-for-byte unchanged afterwards, and uninstalling removes /opt/studio.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
started=$(date +%s)
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    installer/build_linux.sh
fi
built=$(date +%s)
DEB=$ROOT/$(ls -t dist/installer/studio_*.deb | head -1)

WORK=$(mktemp -d /tmp/studio-smoke.XXXXXX)
if [ "${CI:-}" = true ]; then
    TARGET=/
    install_deb() { dpkg -i "$DEB"; }
    remove_deb() { dpkg -r studio; }
else
    # A private dpkg database in a temporary root; maintainer scripts run outside a chroot
    # and see DPKG_ROOT, as they do for any install into another root.
    TARGET=$WORK/root
    mkdir -p "$TARGET/var/lib/dpkg/info" "$TARGET/var/lib/dpkg/updates"
    touch "$TARGET/var/lib/dpkg/status"
    # The empty root has none of the libraries the package depends on: say so only on failure.
    install_deb() {
        dpkg --root="$TARGET" --force-script-chrootless --force-depends -i "$DEB" 2>"$WORK/dpkg.log" \
            || { cat "$WORK/dpkg.log" >&2; return 1; }
    }
    remove_deb() { dpkg --root="$TARGET" --force-script-chrootless -r studio; }
fi
INSTALLED=${TARGET%/}/opt/studio
BIN=${TARGET%/}/usr/bin
cleanup() {
    if [ -d "$INSTALLED" ]; then remove_deb >/dev/null 2>&1 || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== installing $DEB into $TARGET"
install_deb >/dev/null
[ -x "$BIN/studio" ] && [ -x "$BIN/studio-app" ] || { echo "FAIL: launchers missing in $BIN" >&2; exit 1; }
[ -f "${TARGET%/}/usr/share/applications/studio.desktop" ] || { echo "FAIL: no .desktop entry" >&2; exit 1; }
[ -f "${TARGET%/}/usr/share/icons/hicolor/scalable/apps/studio.svg" ] || { echo "FAIL: no icon" >&2; exit 1; }
listing() { (cd "$INSTALLED" && find . -printf '%p %y %s %T@ %m\n' | sort); }
listing >"$WORK/before.txt"

# A fresh user: empty home, no STUDIO_HOME, so the app uses its platformdirs locations.
unset XDG_DATA_HOME XDG_CONFIG_HOME XDG_CACHE_HOME STUDIO_HOME
export HOME=$WORK/home
mkdir -p "$HOME"
cd "$WORK"  # not the source checkout: nothing may resolve against it
export QT_QPA_PLATFORM=offscreen
OFFLINE=()
if unshare -n true 2>/dev/null; then OFFLINE=(unshare -n); else echo "note: unshare -n unavailable, network not cut"; fi

echo "== first launch (window shown, then quit)"
t0=$(date +%s%N)
"${OFFLINE[@]}" "$BIN/studio-app" --quit-after-show | tee "$WORK/first.txt"
first_launch_ms=$(( ($(date +%s%N) - t0) / 1000000 ))

echo "== studio-app --smoke-test"
t0=$(date +%s%N)
"${OFFLINE[@]}" "$BIN/studio-app" --smoke-test
smoke_ms=$(( ($(date +%s%N) - t0) / 1000000 ))

echo "== studio generate ppca-mnist"
"${OFFLINE[@]}" "$BIN/studio" generate ppca-mnist --seed 0 --out "$WORK/x.png"
python3 - "$WORK/x.png" <<'EOF'
import sys
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
print(f"ok   {sys.argv[1]}: {len(data)} bytes")
EOF

listing >"$WORK/after.txt"
if ! diff -u "$WORK/before.txt" "$WORK/after.txt"; then
    echo "FAIL: the app changed its install folder" >&2
    exit 1
fi
[ -d "$HOME/.local/share/Studio" ] || { echo "FAIL: no user data under platformdirs" >&2; exit 1; }
installed_kb=$(du -sk "$INSTALLED" | cut -f1)

echo "== uninstalling"
remove_deb >/dev/null
[ ! -e "$INSTALLED" ] || { echo "FAIL: $INSTALLED still exists after removal" >&2; exit 1; }
[ ! -e "$BIN/studio" ] || { echo "FAIL: $BIN/studio still exists after removal" >&2; exit 1; }

finished=$(date +%s)
cat <<EOF
== smoke test passed
deb size        $(du -m "$DEB" | cut -f1) MB  ($DEB)
installed size  $((installed_kb / 1024)) MB
first launch    ${first_launch_ms} ms wall ($(cat "$WORK/first.txt"))
smoke test      ${smoke_ms} ms wall
build           $((built - started)) s
total           $((finished - started)) s
EOF
