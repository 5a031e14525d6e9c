#!/usr/bin/env bash
# Runs `mpirun COMMAND...` on an emulated cluster of HOSTS machines with RANKS_PER_HOST ranks each,
# all on this one machine (docs/design.md, "Emulated hosts"):
#   - a private network namespace `adaqp<PID>-sw` holds a bridge, the cluster's switch;
#   - each host h (hostname h0, h1, ...) is a network namespace `adaqp<PID>-h<h>` with its own
#     loopback and one NIC `eth0` (address 10.77.0.<h+1>/24), a veth pair to the switch;
#   - each NIC is limited to RATE in each direction (tc tbf, burst 256 KiB: on eth0 for what the host
#     sends, on the switch's port for what it receives), like a full-duplex NIC of that speed;
#   - Open MPI starts with a hostfile (h0 slots=G, h1 slots=G, ...; rank r runs on host r / G) and an
#     rsh agent that enters the host's namespace (with its own UTS namespace and hostname) instead
#     of ssh. Ranks on one host talk over shared memory (vader), ranks on different hosts over TCP
#     through their NICs. mpirun itself runs on h0.
# Every address is inside namespaces this script made (nothing is routed to or from the machine's
# own network); they and /etc/netns/<name> are removed on exit, also on failure or Ctrl-C.
# RATE is a tc rate (100mbit, 250mbit, 1gbit, 10gbit) or `none` (no limit on the NICs).
# Needs root or CAP_NET_ADMIN and CAP_SYS_ADMIN; exits 77 with one line where namespaces cannot be
# made. The simulator's counterpart: `adaqp simulate --parts H*G --link RATE --topology nodes=HxG`.
# usage: benchmarks/cluster_emulation.sh HOSTS RANKS_PER_HOST RATE COMMAND...
set -euo pipefail
if [ $# -lt 4 ]; then
  echo "usage: $0 HOSTS RANKS_PER_HOST RATE COMMAND..." >&2
  exit 2
fi
hosts=$1
per_host=$2
rate=$3
shift 3
for v in "$hosts" "$per_host"; do
  if ! [[ "$v" =~ ^[1-9][0-9]*$ ]] || [ "$v" -gt 64 ]; then
    echo "$0: HOSTS and RANKS_PER_HOST must be integers in 1..64, got '$v'" >&2
    exit 2
  fi
done
if [ "$rate" != none ] && ! [[ "$rate" =~ ^[0-9]+(\.[0-9]+)?([kmg]?bit|[kmg]?bps)$ ]]; then
  echo "$0: RATE must be a tc rate such as 250mbit or 1gbit, or none; got '$rate'" >&2
  exit 2
fi
for tool in ip tc unshare mpirun hostname; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "cluster emulation unavailable: '$tool' not found (Debian packages iproute2, util-linux, openmpi-bin, hostname)" >&2
    exit 77
  fi
done

prefix="adaqp$$"
switch="$prefix-sw"
made=()
tmp=$(mktemp -d)
cleanup() {
  local ns
  for ns in "${made[@]}"; do
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "/etc/netns/$ns"
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

unavailable() {
  echo "cluster emulation unavailable: $1 (needs root or CAP_NET_ADMIN)" >&2
  exit 77
}
add_ns() {
  ip netns add "$1" 2>/dev/null || unavailable "cannot create network namespace '$1'"
  made+=("$1")
  ip -n "$1" link set lo up 2>/dev/null || unavailable "cannot bring up lo in '$1'"
}
shape() {  # shape NAMESPACE DEVICE: the rate on what DEVICE sends
  [ "$rate" = none ] && return 0
  ip netns exec "$1" tc qdisc add dev "$2" root tbf rate "$rate" burst 256kb latency 100ms 2>/dev/null ||
    unavailable "tc cannot shape $2 in '$1' (rate '$rate')"
}

add_ns "$switch"
ip -n "$switch" link add br0 type bridge 2>/dev/null || unavailable "cannot create a bridge in '$switch'"
ip -n "$switch" link set br0 up
etc_hosts="127.0.0.1 localhost"$'\n'
for ((h = 0; h < hosts; ++h)); do
  etc_hosts+="10.77.0.$((h + 1)) h$h"$'\n'
done
for ((h = 0; h < hosts; ++h)); do
  ns="$prefix-h$h"
  add_ns "$ns"
  ip -n "$switch" link add "port$h" type veth peer name eth0 netns "$ns" 2>/dev/null ||
    unavailable "cannot create a veth pair between '$switch' and '$ns'"
  ip -n "$switch" link set "port$h" master br0 up
  ip -n "$ns" addr add "10.77.0.$((h + 1))/24" dev eth0
  ip -n "$ns" link set eth0 up
  shape "$ns" eth0          # what host h sends
  shape "$switch" "port$h"  # what host h receives
  mkdir -p "/etc/netns/$ns"  # `ip netns exec` binds these over /etc: names resolve inside the cluster
  printf '%s' "$etc_hosts" >"/etc/netns/$ns/hosts"
  echo "h$h slots=$per_host" >>"$tmp/hostfile"
done

# The rsh agent: Open MPI calls it as `agent [options] HOST COMMAND...` (as it would call ssh).
cat >"$tmp/agent" <<EOF
#!/usr/bin/env bash
while [ \$# -gt 0 ] && [ "\${1#-}" != "\$1" ]; do shift; done
host=\$1
shift
case "\$host" in
  h[0-9]*) ;;
  *) echo "cluster agent: unknown host '\$host'" >&2; exit 255 ;;
esac
exec ip netns exec "$prefix-\$host" unshare -u /bin/sh -c 'hostname "\$0" && exec /bin/sh -c "\$1"' "\$host" "\$*"
EOF
chmod +x "$tmp/agent"

if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# mpirun on h0 (its own hostname, so h0's ranks start locally); not exec'd: the trap cleans up.
# mpi_yield_when_idle: a rank that busy-polls without yielding starves the softirq that carries
# packets across the veth pairs, so each message waited for a scheduler tick (measured: 4 ms
# half round trip for 8 bytes instead of 6 us, and alpha 5 ms in `adaqp calibrate --links-only`).
set +e
ip netns exec "$prefix-h0" unshare -u /bin/sh -c 'hostname h0 && exec "$@"' sh \
  mpirun -np $((hosts * per_host)) --hostfile "$tmp/hostfile" --map-by slot \
  --mca plm_rsh_agent "$tmp/agent" --mca plm_rsh_no_tree_spawn 1 --mca mpi_yield_when_idle 1 \
  --mca btl self,vader,tcp --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24 \
  "$@"
rc=$?
set -e
exit $rc
