#!/usr/bin/env bash
# Installs Circuitry on a Debian or Ubuntu machine that will act as a coordinator or a worker:
# system packages, a release build, the binary in /usr/local/bin, and (with --systemd ROLE) the
# systemd unit of that role. Run it from a checkout of the repository, as root or with sudo.
#
#   deploy/install.sh                         # build and install the binary only
#   deploy/install.sh --systemd worker        # also install circuitry-worker.service
#   deploy/install.sh --systemd coordinator   # also install circuitry-coordinator.service
set -euo pipefail
cd "$(dirname "$0")/.."

role=""
prefix=/usr/local
while [ $# -gt 0 ]; do
    case "$1" in
        --systemd) role="${2:?--systemd needs coordinator or worker}"; shift 2 ;;
        --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "install: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
case "$role" in ""|coordinator|worker) ;; *) echo "install: --systemd takes coordinator or worker, not '$role'" >&2; exit 2 ;; esac

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

deploy/setup.sh
swift build -c release --product circuitry
$sudo install -m 0755 "$(swift build -c release --show-bin-path)/circuitry" "$prefix/bin/circuitry"
echo "install: $prefix/bin/circuitry"

if [ -n "$role" ]; then
    id circuitry >/dev/null 2>&1 || $sudo useradd --system --create-home --home-dir /var/lib/circuitry circuitry
    $sudo install -d -o circuitry -g circuitry /var/lib/circuitry /etc/circuitry
    [ -f /etc/circuitry/circuitry.env ] || $sudo install -m 0644 deploy/systemd/circuitry.env /etc/circuitry/circuitry.env
    # This machine's CURVE key pair, readable by the service user only.
    host="$(hostname -s)"
    if [ ! -f "/etc/circuitry/keys/$host.key" ]; then
        $sudo install -d -m 0750 -o circuitry -g circuitry /etc/circuitry/keys
        $sudo "$prefix/bin/circuitry" keygen --out /etc/circuitry/keys --name "$host" >/dev/null
        $sudo chown circuitry:circuitry "/etc/circuitry/keys/$host.key" "/etc/circuitry/keys/$host.pub"
    fi
    $sudo sed -i "s|^CIRCUITRY_KEY=.*/HOSTNAME.key\$|CIRCUITRY_KEY=/etc/circuitry/keys/$host.key|" /etc/circuitry/circuitry.env
    $sudo install -m 0644 "deploy/systemd/circuitry-$role.service" /etc/systemd/system/
    $sudo systemctl daemon-reload
    echo "install: public key /etc/circuitry/keys/$host.pub"
    if [ "$role" = coordinator ]; then
        echo "install: copy it to each worker as /etc/circuitry/coordinator.pub; append each worker's .pub to /etc/circuitry/authorized_keys"
    else
        echo "install: append it to the coordinator's authorized_keys; put the coordinator's .pub here as /etc/circuitry/coordinator.pub"
    fi
    echo "install: edit /etc/circuitry/circuitry.env, then: systemctl enable --now circuitry-$role"
fi
