#!/usr/bin/env bash
# Source rules that the compiler does not enforce.
#
# 1. No co_await inside an if or while condition. g++ 12 miscompiles it: the coroutine's
#    frame gets a corrupted copy of its parameters, before the co_await even runs (a crash, or
#    a silent wrong pointer). Await into a local first:
#        const bool sent = co_await channel.write(data);
#        if (!sent) ...
# 2. No conditional operator (a ? b : c) among a co_await's arguments on its line, for the same
#    reason: a temporary it builds is corrupted in the frame. Build the argument first.
set -euo pipefail
cd "$(dirname "$0")/.."
if hits=$(grep -rnE '\b(if|while) *\(([^()]|\([^()]*\))*\bco_await\b' src tests bench fuzz --include='*.cpp' --include='*.hpp'); then
  echo "co_await inside a condition (g++ 12 miscompiles it; await into a local first):"
  echo "$hits"
  exit 1
fi
if hits=$(grep -rnE '\bco_await\b[^;]* \? [^;]* : ' src tests bench fuzz --include='*.cpp' --include='*.hpp'); then
  echo "a conditional operator in a co_await's arguments (g++ 12 miscompiles it; build it first):"
  echo "$hits"
  exit 1
fi
echo "source rules: ok"
