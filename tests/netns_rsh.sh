#!/bin/sh
# An --rsh command for tests: "netns_rsh.sh HOST COMMAND..." runs COMMAND in
# the network namespace named HOST.  Like ssh, it joins the words of COMMAND
# and hands them to a shell.
host=$1
shift
exec ip netns exec "$host" sh -c "$*"
