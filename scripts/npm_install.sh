#!/usr/bin/env bash
# Makes DIR/node_modules match DIR's package-lock.json (npm ci) unless it already does.
#
#   scripts/npm_install.sh DIR TAG
#
# node_modules is current when it was installed from this very package.json and lock file (a
# stamp inside it records their hash). A lock on DIR keeps two builds (build/, build-asan/)
# from installing at the same time. TAG names the caller in messages.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 DIR TAG" >&2
  exit 2
fi
DIR=$1
TAG=$2
for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "$TAG: '$tool' is not installed; run scripts/bootstrap.sh (Debian packages nodejs and npm)" >&2
    exit 1
  fi
done
stamp="$DIR/node_modules/.parley-installed"
want=$(cat "$DIR/package.json" "$DIR/package-lock.json" | sha256sum | cut -d' ' -f1)
exec 9<"$DIR"
flock 9
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "$TAG: installing the npm packages (npm ci)"
  (cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
fi
