#!/usr/bin/env bash
# Runs `mpirun -np NP COMMAND...` over an emulated link: a private network namespace (unshare -n)
# whose loopback carries a token-bucket rate limit (tc tbf), with Open MPI forced onto TCP over lo.
# RATE is a tc rate (100mbit, 250mbit, 1gbit, 10gbit) or `none` (TCP over lo, no limit).
# Needs root or CAP_NET_ADMIN; exits 77 with one line when the namespace cannot be made.
# usage: benchmarks/link_emulation.sh RATE NP COMMAND...
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 RATE NP COMMAND..." >&2
  exit 2
fi
rate=$1
np=$2
shift 2
for tool in unshare ip tc mpirun; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "link emulation unavailable: '$tool' not found (Debian packages util-linux, iproute2, openmpi-bin)" >&2
    exit 77
  fi
done
if [ "${ADAQP_IN_LINK_NS:-}" != 1 ]; then
  if ! unshare -n true 2>/dev/null; then
    echo "link emulation unavailable: cannot create a network namespace (needs root or CAP_NET_ADMIN)" >&2
    exit 77
  fi
  exec unshare -n env ADAQP_IN_LINK_NS=1 bash "$0" "$rate" "$np" "$@"
fi
if ! ip link set lo up 2>/dev/null; then
  echo "link emulation unavailable: cannot bring up lo in the namespace" >&2
  exit 77
fi
if [ "$rate" != none ]; then
  if ! tc qdisc add dev lo root tbf rate "$rate" burst 256kb latency 100ms 2>/dev/null; then
    echo "link emulation unavailable: tc cannot shape lo (rate '$rate')" >&2
    exit 77
  fi
fi
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
exec mpirun -np "$np" --oversubscribe --mca btl tcp,self --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo "$@"
