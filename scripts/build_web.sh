#!/usr/bin/env bash
# Builds the web chat (web/) into a C++ source file of its files, compiled into the binary.
#
#   scripts/build_web.sh OUTPUT.cpp [--dist DIR]
#
# Installs web/'s pinned npm packages (esbuild, marked, DOMPurify, highlight.js) from its lock
# file when web/node_modules is missing or came from another lock file, then runs web/build.mjs.
# CMake runs it whenever a file of web/ changes.
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 OUTPUT.cpp [--dist DIR]" >&2
  exit 2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WEB_DIR="$ROOT/web"
absolute() { [[ "$1" == /* ]] && echo "$1" || echo "$PWD/$1"; }
OUTPUT=$(absolute "$1")
shift

"$ROOT/scripts/npm_install.sh" "$WEB_DIR" web
node "$WEB_DIR/build.mjs" --out "$OUTPUT" "$@"
