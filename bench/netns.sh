#!/usr/bin/env bash
# bench/netns.sh: network-namespace "hosts" on this machine for bench/run --hosts.
#
#   netns.sh up N        hosts npb0..npb{N-1}, each with one veth into a bridge
#                        that lives in its own namespace (npbsw), so the root
#                        namespace's network is not touched; host i has
#                        198.18.0.(i+1)/24 (RFC 2544 benchmark range) and lo up
#   netns.sh down N      remove them (also what a failed `up` leaves)
#   netns.sh exec I CMD  run CMD on host I, in its own UTS namespace whose
#                        hostname is npbI (launchers tell nodes apart by name)
#   netns.sh rsh [-opts] ADDR CMD...
#                        an ssh stand-in for launchers (Open MPI's
#                        plm_rsh_agent, numpush-run --rsh): runs the command
#                        string on the host that owns ADDR
set -euo pipefail

addr() { echo "198.18.0.$(($1 + 1))"; }

up() {
  local n=$1
  down "$n" 2>/dev/null || true
  ip netns add npbsw
  ip -n npbsw link add br0 type bridge
  ip -n npbsw link set br0 up
  ip -n npbsw link set lo up
  for ((i = 0; i < n; i++)); do
    ip netns add "npb$i"
    ip link add "npbv$i" type veth peer name "npbp$i"
    ip link set "npbv$i" netns "npb$i"
    ip link set "npbp$i" netns npbsw
    ip -n npbsw link set "npbp$i" master br0
    ip -n npbsw link set "npbp$i" up
    ip -n "npb$i" link set "npbv$i" name eth0
    ip -n "npb$i" addr add "$(addr "$i")/24" dev eth0
    ip -n "npb$i" link set eth0 up
    ip -n "npb$i" link set lo up
  done
  echo "netns: $n hosts up: $(for ((i = 0; i < n; i++)); do printf '%s ' "$(addr "$i")"; done)"
}

down() {
  local n=$1
  for ((i = 0; i < n; i++)); do ip netns del "npb$i" 2>/dev/null || true; done
  ip netns del npbsw 2>/dev/null || true
}

on_host() { # I CMD... (argv)
  local i=$1; shift
  exec ip netns exec "npb$i" unshare --uts sh -c 'hostname "$0"; exec "$@"' "npb$i" "$@"
}

case "${1:-}" in
  up) up "$2" ;;
  down) down "$2" ;;
  exec) shift; on_host "$@" ;;
  rsh)
    shift
    while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do shift; done # ssh options
    host=$1; shift
    case "$host" in
      198.18.0.*) i=$((${host##*.} - 1)) ;;
      npb*) i=${host#npb} ;;
      *) echo "netns.sh rsh: unknown host '$host'" >&2; exit 255 ;;
    esac
    on_host "$i" sh -c "$*"
    ;;
  *) sed -n '2,18p' "$0" >&2; exit 2 ;;
esac
