#!/usr/bin/env bash
# The Node.js test suites against a real Parley: tests/e2e (the official OpenAI SDK; ctest's
# e2e_openai_sdk) or, with --suite browser, tests/browser (the web chat in Debian's chromium,
# driven by playwright-core; ctest's browser_webchat).
#
#   scripts/e2e.sh [--suite e2e|browser] PARLEY_BINARY FAKE_UPSTREAM_BINARY [node --test options...]
#
# Installs the suite's npm packages from its package-lock.json when its node_modules is missing
# or was installed from another lock file, then runs every tests/SUITE/*.test.mjs with node's
# own test runner.
set -euo pipefail

SUITE=e2e
if [[ "${1:-}" == --suite ]]; then
  SUITE=${2:-}
  shift 2 || true
fi
if [[ $# -lt 2 || ( "$SUITE" != e2e && "$SUITE" != browser ) ]]; then
  echo "usage: $0 [--suite e2e|browser] PARLEY_BINARY FAKE_UPSTREAM_BINARY [node --test options...]" >&2
  exit 2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
E2E_DIR="$ROOT/tests/$SUITE"

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
if [[ "$SUITE" == browser ]] && ! command -v chromium >/dev/null 2>&1; then
  echo "e2e: Debian's chromium is not installed; run scripts/bootstrap.sh" >&2
  exit 1
fi

"$ROOT/scripts/npm_install.sh" "$E2E_DIR" e2e

cd "$ROOT"
# Explicit files rather than the directory: how node --test treats a directory argument
# differs between node versions (18/20 search it, 22 takes globs).
exec node --test "$@" "$E2E_DIR"/*.test.mjs
