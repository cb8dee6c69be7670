#!/usr/bin/env bash
#  Installs the Debian 12 packages ketenpost builds and tests with, if any is
#  missing. Needs root (or sudo) only when something must be installed.
set -euo pipefail
packages=(build-essential cmake pkg-config libzmq3-dev libczmq-dev libsodium-dev
          libprotobuf-c-dev protobuf-c-compiler libcriterion-dev)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: installing ${missing[*]}" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
