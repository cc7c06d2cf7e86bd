#!/usr/bin/env bash
# Starts Circuitry workers on a list of hosts over ssh, each in the background with its log in
# ~/circuitry-worker.log on that host. The hosts need the binary (deploy/install.sh) and must
# reach the coordinator's port.
#
#   deploy/launch-workers.sh --connect tcp://COORDINATOR:5555 --hosts hosts.txt [--slots N]
#   deploy/launch-workers.sh --stop --hosts hosts.txt
#
# hosts.txt: one ssh destination per line (user@host or a Host of ~/.ssh/config); # comments.
set -euo pipefail

connect="" hosts="" slots="" stop=0
while [ $# -gt 0 ]; do
    case "$1" in
        --connect) connect="${2:?}"; shift 2 ;;
        --hosts) hosts="${2:?}"; shift 2 ;;
        --slots) slots="${2:?}"; shift 2 ;;
        --stop) stop=1; shift ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "launch-workers: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[ -n "$hosts" ] && [ -f "$hosts" ] || { echo "launch-workers: --hosts FILE is required and must exist" >&2; exit 2; }
[ "$stop" -eq 1 ] || [ -n "$connect" ] || { echo "launch-workers: --connect tcp://HOST:PORT is required" >&2; exit 2; }

slot_flag=""
[ -z "$slots" ] || slot_flag="--slots $slots"
status=0
while read -r host _; do
    case "$host" in ""|\#*) continue ;; esac
    if [ "$stop" -eq 1 ]; then
        ssh -n -o BatchMode=yes "$host" 'pkill -TERM -f "circuitry worker" || true' && echo "$host: stopped" || { echo "$host: ssh failed" >&2; status=1; }
    else
        ssh -n -o BatchMode=yes "$host" "nohup circuitry worker --connect '$connect' $slot_flag >>\$HOME/circuitry-worker.log 2>&1 </dev/null & echo \$!" \
            | sed "s/^/$host: worker pid /" || { echo "$host: ssh failed" >&2; status=1; }
    fi
done < "$hosts"
exit $status
