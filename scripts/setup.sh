#!/usr/bin/env bash
# Installs the Debian 12 packages adaqp needs (only the missing ones; needs root or sudo).
set -euo pipefail
packages=(
  build-essential cmake pkg-config git
  libopenmpi-dev openmpi-bin libmetis-dev libptscotch-dev coinor-libcbc-dev
  libopenblas-dev libopenblas-openmp-dev
  libboost-graph-dev libfmt-dev catch2 libbenchmark-dev libyaml-cpp-dev nlohmann-json3-dev
  libcli11-dev zlib1g-dev libeigen3-dev python3-matplotlib python3-numpy
  clang-format  # scripts/check_format.sh (the format test)
  procps  # pkill, for the checkpoint test's SIGKILL
  iproute2  # tc and ip, for link emulation (benchmarks/link_emulation.sh)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi
echo "setup: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
