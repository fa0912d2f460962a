#!/usr/bin/env bash
# Installs the software WebGPU adapter that CI (and any GPU-less Debian 12 machine) runs the WebGPU kernels on:
# Mesa 25 lavapipe (Vulkan on the CPU) from bookworm-backports, unpacked into .cache/mesa/ with an ICD JSON whose
# library_path is absolute. Debian 12's own Mesa 22.3 lavapipe is rejected by Dawn, hence the backport.
# Idempotent: a second run only checks. Needs root (or sudo) for the apt source and libvulkan1 (the Vulkan loader).
#
#   tools/setup-lavapipe.sh          install if missing, then print the environment for child processes
#   tools/setup-lavapipe.sh --env    print only `export ...` lines (for `eval "$(tools/setup-lavapipe.sh --env)"`)
#   tools/setup-lavapipe.sh --force  download and unpack again
#
# The WebGPU device finds .cache/mesa/ by itself (gpu-backend/devices/webgpu/software-adapter.ts sets
# VK_ICD_FILENAMES in-process); LD_LIBRARY_PATH only matters for processes started with it.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST=$ROOT/.cache/mesa
ICD=$DEST/lvp_icd.json
SOURCE_LINE='deb http://deb.debian.org/debian bookworm-backports main'
SOURCE_FILE=/etc/apt/sources.list.d/bookworm-backports.list
# unpacked at their backports versions next to the driver (the driver asks for libdrm >= 2.4.121); every other
# runtime dependency of the driver is an ordinary Debian 12 library and is installed with apt
LOCAL_PKGS=(mesa-vulkan-drivers libdrm2 libdrm-amdgpu1)

mode=install
case "${1:-}" in
  --env) mode=env ;;
  --force) mode=force ;;
  '') ;;
  *) echo "usage: $0 [--env|--force]" >&2; exit 2 ;;
esac

say() { [ "$mode" = env ] || echo "setup-lavapipe: $*" >&2; }
die() { echo "setup-lavapipe: $*" >&2; exit 1; }

lib_path() { sed -n 's/.*"library_path": *"\([^"]*\)".*/\1/p' "$ICD" 2>/dev/null; }

print_env() {
  local lib; lib=$(lib_path)
  echo "export VK_ICD_FILENAMES='$ICD'"
  echo "export LD_LIBRARY_PATH='$(dirname "$lib")'\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
}

has_loader() { /sbin/ldconfig -p 2>/dev/null | grep 'libvulkan\.so\.1 ' >/dev/null; } # not grep -q: under pipefail its early exit SIGPIPEs ldconfig

# Installed = the ICD points at an existing driver, the driver's libraries resolve, and the loader is there.
installed() {
  local lib; lib=$(lib_path)
  [ -n "$lib" ] && [ -f "$lib" ] && has_loader || return 1
  ! LD_LIBRARY_PATH="$(dirname "$lib")" ldd "$lib" | grep 'not found' >/dev/null
}

if [ "$mode" != force ] && installed; then
  say "lavapipe already set up in ${DEST#$ROOT/}"
  print_env
  exit 0
fi
[ "$mode" = env ] && die "not set up yet: run $0 first"

. /etc/os-release
[ "${VERSION_CODENAME:-}" = bookworm ] || die "this script knows Debian 12 (bookworm); on ${PRETTY_NAME:-this system} install \
Mesa >= 24 lavapipe (mesa-vulkan-drivers) and libvulkan1 with the system's package manager instead"
command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || die "needs apt-get and dpkg-deb"

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "needs root (or sudo) to add the bookworm-backports apt source and install libvulkan1"
  SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive

if ! grep -rqs '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  say "adding the bookworm-backports apt source ($SOURCE_FILE)"
  echo "$SOURCE_LINE" | "${SUDO[@]}" tee "$SOURCE_FILE" >/dev/null
fi
# (apt-cache show pkg/release succeeds with no output when the release is unknown, so look at the output)
driver_info() { apt-cache show mesa-vulkan-drivers/bookworm-backports 2>/dev/null || true; }
info=$(driver_info)
if ! grep -q '^Version: ' <<<"$info"; then
  say "apt-get update"
  "${SUDO[@]}" apt-get update -qq
  info=$(driver_info)
  grep -q '^Version: ' <<<"$info" || die "bookworm-backports has no mesa-vulkan-drivers (no network?)"
fi

# Runtime dependencies of the driver, from its package's Depends, minus those unpacked locally.
deps=$(sed -n 's/^Depends: //p' <<<"$info" | sed -n 1p \
  | tr ',' '\n' | sed 's/[(|].*//; s/:any//; s/ //g' | grep -v '^$' \
  | grep -vxF -e libdrm2 -e libdrm-amdgpu1 | sort -u)
say "apt-get install libvulkan1 and the driver's runtime libraries"
# shellcheck disable=SC2086 # one package name per word
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends libvulkan1 $deps >/dev/null

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
say "downloading ${LOCAL_PKGS[*]} from bookworm-backports"
(cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "${LOCAL_PKGS[@]/%//bookworm-backports}")
mkdir -p "$tmp/root"
for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/root"; done

lvp=$(find "$tmp/root" -name libvulkan_lvp.so | head -n1)
src_icd=$(find "$tmp/root" -path '*/vulkan/icd.d/lvp_icd*.json' | head -n1)
[ -n "$lvp" ] && [ -n "$src_icd" ] || die "the mesa-vulkan-drivers package holds no lavapipe driver"

# only lavapipe is wanted: drop the package's hardware drivers, layers and docs (64 MB -> 11 MB)
find "$tmp/root" \( -name 'libvulkan_*.so' ! -name libvulkan_lvp.so \) -o -name 'libVkLayer_*' | xargs -r rm -f
rm -rf "$tmp/root/usr/share/doc" "$tmp/root/usr/share/vulkan/explicit_layer.d" "$tmp/root/usr/share/vulkan/implicit_layer.d"

rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
mv "$tmp/root" "$DEST"
lvp=$DEST${lvp#"$tmp/root"}
src_icd=$DEST${src_icd#"$tmp/root"}
# The packaged ICD names the library relatively (found through the system's library path): make it absolute.
sed "s#\"library_path\": *\"[^\"]*\"#\"library_path\": \"$lvp\"#" "$src_icd" > "$ICD"

installed || {
  LD_LIBRARY_PATH="$(dirname "$lvp")" ldd "$lvp" | grep 'not found' >&2 || true
  die "lavapipe unpacked but not usable (missing libraries above, or no libvulkan.so.1)"
}
say "lavapipe $(dpkg-deb -f "$tmp"/mesa-vulkan-drivers_*.deb Version) ready in ${DEST#$ROOT/}"
print_env
