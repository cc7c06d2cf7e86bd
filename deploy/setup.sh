#!/usr/bin/env bash
# Installs what Circuitry needs to build on Debian or Ubuntu, when it is missing, and resolves
# the Swift packages. Safe to run again: it installs nothing that is already there.
#   deploy/setup.sh           what building and running need
#   deploy/setup.sh --tests   also Debian's chromium, which the tests render the report with
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libzmq3-dev libopenblas-dev libsqlite3-dev pkg-config)
case "${1:-}" in
    "") ;;
    --tests) packages+=(chromium) ;;
    *) echo "setup: unknown option $1 (the only option is --tests)" >&2; exit 2 ;;
esac
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "setup: swift is not on PATH (Swift 6 is required)" >&2; exit 1; }
swift package resolve >/dev/null
