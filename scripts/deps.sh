#!/usr/bin/env bash
# Installs the Debian 12 packages calq's build, tests and examples need — the one package list,
# used by scripts/quickstart.sh, scripts/test.sh and .ci/run.
#  - Nothing missing: does nothing (no network, no root needed).
#  - Missing and root: apt-get update once, then apt-get install of what is missing.
#  - Missing and not root: prints the one apt-get line to run, and fails.
# Usage: scripts/deps.sh [--list]     (--list prints the package list and exits)
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libopenblas-dev
  # libdnnl-dev's CMake config calls find_package(OpenCL), whose headers libdnnl-dev only
  # *recommends*: without ocl-icd-opencl-dev a --no-install-recommends install fails at configure.
  libdnnl-dev ocl-icd-opencl-dev
  nlohmann-json3-dev libonig-dev libutf8proc-dev libcli11-dev
  # calq study: TOML study files (toml++) and the SQLite results store (docs/study.md).
  libtomlplusplus-dev libsqlite3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # calq report draws with gnuplot (svg, pngcairo) in DejaVu Sans; its test opens the page in
  # headless Chromium (docs/report.md).
  gnuplot-nox fonts-dejavu-core chromium
)

if [ "${1:-}" = "--list" ]; then echo "${packages[@]}"; exit 0; fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

line="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" != 0 ]; then
  echo "calq needs these Debian packages; run as root:" >&2
  echo "  sudo apt-get update && sudo $line" >&2
  exit 1
fi
echo "== installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
