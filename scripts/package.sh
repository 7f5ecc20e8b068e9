#!/usr/bin/env bash
# Builds the Debian packages (portholed, porthole, and their -dbgsym) from the current work tree,
# uncommitted changes included, and checks them with lintian.
#
# Usage: scripts/package.sh [OUTDIR]        (default: build-deb/ in the repository)
#
# The tree (tracked and untracked files that .gitignore does not exclude, i.e. no build
# directories) is copied to a temporary directory, where `dpkg-buildpackage -us -uc -b` runs
# (packaging/debian is reached through the top-level `debian` symlink). The .deb, .ddeb,
# .buildinfo and .changes files land in OUTDIR. lintian errors fail the script; warnings are
# printed. Needs: dpkg-dev, debhelper, fakeroot, lintian and the build dependencies
# (scripts/install-deps.sh installs them all).
# Environment: JOBS=N build parallelism (default: nproc); KEEP_TMP=1 keeps the temporary copy.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${1:-$ROOT/build-deb}
JOBS=${JOBS:-$(nproc)}

die() { echo "package: error: $*" >&2; exit 1; }
for t in dpkg-buildpackage dh fakeroot lintian dpkg-parsechangelog; do
  command -v "$t" >/dev/null 2>&1 || die "$t not found (run: sudo scripts/install-deps.sh)"
done
[[ -L debian && -f debian/control ]] || die "the 'debian -> packaging/debian' symlink is missing"

now() { date +%s; }
t_start=$(now)
version=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
TMP=$(mktemp -d /tmp/porthole-pkg.XXXXXX)
cleanup() { if [[ ${KEEP_TMP:-0} == 1 ]]; then echo "package: kept $TMP"; else rm -rf "$TMP"; fi; }
trap cleanup EXIT
SRC=$TMP/porthole-$version
mkdir -p "$SRC"

# 1. Copy the work tree without build output.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # Tracked and untracked-but-not-ignored files; a tracked file deleted in the work tree is left out.
  git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do
      [[ $f == obj-*/* ]] && continue  # an in-tree dpkg-buildpackage's build directory
      [[ -e $f || -L $f ]] && printf '%s\0' "$f"
    done |
    tar -c --null --no-recursion -T - -f - | tar -x -C "$SRC" -f -
else
  tar -c --exclude='./build*' --exclude=./out -f - . | tar -x -C "$SRC" -f -
fi
[[ -L $SRC/debian ]] || die "the copy has no 'debian' symlink"
echo "package: porthole $version: $(find "$SRC" -type f | wc -l) files copied to $SRC"

# 2. Build (binary packages only, unsigned).
t_build=$(now)
log=$TMP/dpkg-buildpackage.log
if ! (cd "$SRC" && DEB_BUILD_OPTIONS="parallel=$JOBS ${DEB_BUILD_OPTIONS:-}" \
        dpkg-buildpackage -us -uc -b >"$log" 2>&1); then
  tail -n 60 "$log" >&2
  die "dpkg-buildpackage failed (log above; KEEP_TMP=1 keeps $log)"
fi
grep -E '^dpkg-deb: building package' "$log" | sed 's/^/package: /'
t_built=$(now)

# 3. Collect the results.
mkdir -p "$OUT"
rm -f "$OUT"/porthole*_*.deb "$OUT"/porthole*_*.ddeb "$OUT"/porthole_*.changes "$OUT"/porthole_*.buildinfo
cp "$TMP"/*.deb "$TMP"/*.changes "$TMP"/*.buildinfo "$OUT"/
cp "$TMP"/*.ddeb "$OUT"/ 2>/dev/null || true
changes=$(ls "$OUT"/porthole_*.changes)

# 4. lintian: errors fail, warnings (and the rest) are shown.
t_lint=$(now)
lintian_out=$TMP/lintian.txt
set +e
lintian_cmd=(lintian --fail-on error --info --tag-display-limit 0 "$changes")
# lintian advises against running as root: use nobody when it can read the results.
if [[ $(id -u) -eq 0 ]] && runuser -u nobody -- test -r "$changes" 2>/dev/null; then
  lintian_cmd=(runuser -u nobody -- env HOME="$TMP" "${lintian_cmd[@]}")
  chmod 0755 "$TMP"
fi
"${lintian_cmd[@]}" >"$lintian_out" 2>&1
lint_rc=$?
set -e
sed 's/^/lintian: /' "$lintian_out"
errors=$(grep -c '^E: ' "$lintian_out" || true)
warnings=$(grep -c '^W: ' "$lintian_out" || true)
infos=$(grep -c '^I: ' "$lintian_out" || true)
t_end=$(now)

echo "package: results in $OUT:"
for f in "$OUT"/*.deb; do echo "package:   ${f##*/} ($(stat -c %s "$f") bytes)"; done
echo "package: lintian: $errors error(s), $warnings warning(s), $infos info tag(s)"
echo "package: time: copy $((t_build - t_start)) s, dpkg-buildpackage $((t_built - t_build)) s," \
     "lintian $((t_end - t_lint)) s, total $((t_end - t_start)) s"
((lint_rc == 0)) || die "lintian reported errors"
