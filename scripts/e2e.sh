#!/usr/bin/env bash
# End-to-end tests with the official OpenAI SDK for Node.js (tests/e2e).
#
#   scripts/e2e.sh PARLEY_BINARY FAKE_UPSTREAM_BINARY [node --test options...]
#
# Installs the SDK from tests/e2e/package-lock.json when tests/e2e/node_modules is missing or
# was installed from another lock file, then runs every tests/e2e/*.test.mjs with node's own
# test runner. ctest runs it as e2e_openai_sdk.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 PARLEY_BINARY FAKE_UPSTREAM_BINARY [node --test options...]" >&2
  exit 2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
E2E_DIR="$ROOT/tests/e2e"

absolute() { [[ "$1" == /* ]] && echo "$1" || echo "$PWD/$1"; }
PARLEY_BINARY=$(absolute "$1")
PARLEY_FAKE_UPSTREAM=$(absolute "$2")
shift 2
for bin in "$PARLEY_BINARY" "$PARLEY_FAKE_UPSTREAM"; do
  if [[ ! -x "$bin" ]]; then
    echo "e2e: $bin is not an executable (build it first)" >&2
    exit 1
  fi
done
export PARLEY_BINARY PARLEY_FAKE_UPSTREAM

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "e2e: '$tool' is not installed; run scripts/bootstrap.sh (Debian packages nodejs and npm)" >&2
    exit 1
  fi
done

# node_modules is current when it was installed from this very package.json and lock file.
# The lock on the directory keeps two builds' test runs (build/, build-asan/) from installing
# at the same time.
stamp="$E2E_DIR/node_modules/.parley-e2e-installed"
want=$(cat "$E2E_DIR/package.json" "$E2E_DIR/package-lock.json" | sha256sum | cut -d' ' -f1)
exec 9<"$E2E_DIR"
flock 9
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "e2e: installing the npm packages (npm ci)"
  (cd "$E2E_DIR" && npm ci --no-audit --no-fund)
  echo "$want" >"$stamp"
fi
flock -u 9
exec 9<&-

cd "$ROOT"
# Explicit files rather than the directory: how node --test treats a directory argument
# differs between node versions (18/20 search it, 22 takes globs).
exec node --test "$@" "$E2E_DIR"/*.test.mjs
