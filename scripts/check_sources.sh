#!/usr/bin/env bash
# Source rules that the compiler does not enforce.
#
# 1. No co_await inside an if or while condition. g++ 12 miscompiles it: the coroutine's
#    frame gets a corrupted copy of its parameters, before the co_await even runs (a crash, or
#    a silent wrong pointer). Await into a local first:
#        const bool sent = co_await channel.write(data);
#        if (!sent) ...
set -euo pipefail
cd "$(dirname "$0")/.."
if hits=$(grep -rnE '\b(if|while) *\(([^()]|\([^()]*\))*\bco_await\b' src tests bench fuzz --include='*.cpp' --include='*.hpp'); then
  echo "co_await inside a condition (g++ 12 miscompiles it; await into a local first):"
  echo "$hits"
  exit 1
fi
echo "source rules: ok"
