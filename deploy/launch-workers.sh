#!/usr/bin/env bash
# Starts Circuitry workers on a list of hosts over ssh, each in the background with its log in
# ~/circuitry-worker.log on that host. The hosts need the binary (deploy/install.sh) and must
# reach the coordinator's port.
#
#   deploy/launch-workers.sh --keys --hosts hosts.txt --authorized-keys FILE
#   deploy/launch-workers.sh --connect tcp://COORDINATOR:5555 --server-key coordinator.pub --hosts hosts.txt [--slots N]
#   deploy/launch-workers.sh --stop --hosts hosts.txt
#
# --keys makes a key pair on each host that has none (~/.circuitry/keys/HOST.key) and appends
# its public key to the coordinator's authorised-keys FILE. Starting copies --server-key (the
# coordinator's .pub file, or its 40-character key) to each host and passes both keys to the worker.
# hosts.txt: one ssh destination per line (user@host or a Host of ~/.ssh/config); # comments.
set -euo pipefail

connect="" hosts="" slots="" server_key="" authorized="" mode=start
while [ $# -gt 0 ]; do
    case "$1" in
        --connect) connect="${2:?}"; shift 2 ;;
        --hosts) hosts="${2:?}"; shift 2 ;;
        --slots) slots="${2:?}"; shift 2 ;;
        --server-key) server_key="${2:?}"; shift 2 ;;
        --authorized-keys) authorized="${2:?}"; shift 2 ;;
        --keys) mode=keys; shift ;;
        --stop) mode=stop; shift ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "launch-workers: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[ -n "$hosts" ] && [ -f "$hosts" ] || { echo "launch-workers: --hosts FILE is required and must exist" >&2; exit 2; }
case "$mode" in
    keys) [ -n "$authorized" ] || { echo "launch-workers: --keys needs --authorized-keys FILE" >&2; exit 2; } ;;
    start)
        [ -n "$connect" ] || { echo "launch-workers: --connect tcp://HOST:PORT is required" >&2; exit 2; }
        [ -n "$server_key" ] || { echo "launch-workers: --server-key FILE_OR_KEY (the coordinator's public key) is required" >&2; exit 2; }
        # The coordinator's public key itself, so nothing but the key travels to the hosts.
        if [ -f "$server_key" ]; then
            server_key="$(sed -n 's/^[[:space:]]*\([^[:space:]]\{40\}\)\([[:space:]].*\)\{0,1\}$/\1/p' "$server_key" | head -n 1)"
        fi
        [ "${#server_key}" -eq 40 ] || { echo "launch-workers: --server-key holds no 40-character public key" >&2; exit 2; }
        ;;
esac

slot_flag=""
[ -z "$slots" ] || slot_flag="--slots $slots"
status=0
while read -r host _; do
    case "$host" in ""|\#*) continue ;; esac
    case "$mode" in
    stop)
        ssh -n -o BatchMode=yes "$host" 'pkill -TERM -f "circuitry worker" || true' && echo "$host: stopped" || { echo "$host: ssh failed" >&2; status=1; }
        ;;
    keys)
        # Z85 keys contain no quote characters, so the key travels safely inside single quotes.
        if line="$(ssh -n -o BatchMode=yes "$host" 'name=$(hostname -s); dir=$HOME/.circuitry/keys; [ -f "$dir/$name.key" ] || circuitry keygen --out "$dir" --name "$name" >/dev/null; grep -v "^# " "$dir/$name.pub"')"; then
            if grep -qxF "$line" "$authorized" 2>/dev/null; then echo "$host: key already authorised"
            else echo "$line" >> "$authorized"; echo "$host: authorised ${line%% *}"; fi
        else
            echo "$host: ssh or keygen failed" >&2; status=1
        fi
        ;;
    start)
        ssh -n -o BatchMode=yes "$host" "name=\$(hostname -s); nohup circuitry worker --connect '$connect' $slot_flag --key \"\$HOME/.circuitry/keys/\$name.key\" --server-key '$server_key' >>\$HOME/circuitry-worker.log 2>&1 </dev/null & echo \$!" \
            | sed "s/^/$host: worker pid /" || { echo "$host: ssh failed" >&2; status=1; }
        ;;
    esac
done < "$hosts"
exit $status
