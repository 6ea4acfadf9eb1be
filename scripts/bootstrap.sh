#!/usr/bin/env bash
# Installs every Debian 12 package Parley needs to build, run, test and benchmark.
# Idempotent: when everything is present it only asks dpkg and returns in well under a second.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config git ca-certificates curl
  # libraries the server links
  libboost-dev libboost-system-dev nlohmann-json3-dev libsqlite3-dev sqlite3
  libpq-dev libhiredis-dev libhnswlib-dev libspdlog-dev libfmt-dev prometheus-cpp-dev
  libyaml-cpp-dev libcli11-dev libpoppler-cpp-dev libgumbo-dev libcurl4-openssl-dev
  libcmark-gfm-dev libcmark-gfm-extensions-dev libmagic-dev libxapian-dev
  libgoogle-perftools-dev libssl-dev libre2-dev
  # tests, sanitizers, fuzzing, benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev clang-14 libclang-rt-14-dev
  clang-format clang-tidy wrk prometheus
  # the real servers of the slow tier (tests/services/services.sh starts them on loopback)
  postgresql-15 redis-server
  # end-to-end tests with the official OpenAI SDK (tests/e2e, scripts/e2e.sh)
  nodejs npm
  # the web chat's browser tests (playwright-core driving Debian's chromium)
  chromium
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  # A Node.js from elsewhere bundles its own npm (NodeSource's nodejs conflicts with Debian's).
  if [[ "$pkg" == npm ]] && command -v npm >/dev/null 2>&1; then continue; fi
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

echo "bootstrap: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
