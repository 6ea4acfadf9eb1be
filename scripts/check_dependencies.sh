#!/usr/bin/env bash
# Folder dependencies of src/, read from the includes.
#
# A file src/X/... (nested subfolders included) belongs to the top-level folder X; X depends on
# Y when one of its files has `#include "Y/..."` (a quoted include, resolved the way the
# compiler does: next to the including file first, then from src/). System includes <...>,
# includes of a file's own folder and src/pch.hpp are not dependencies. Only lines that start
# with #include count, so a comment that mentions an include does not.
#
# 1. The folder graph has no cycle. Each cycle is printed as a path, a -> b -> a, with one
#    file:line per edge, so it is clear what to move. (One cycle per back edge of a depth-first
#    search: every tangle shows up; fix them and run again to see whether any remain.)
# 2. The layering: core includes no other folder; config only core (configuration machinery
#    must not know the modules whose settings it loads); obs only core and config (its own
#    settings); http only core, config and obs; jobs only core, config and obs; and nothing
#    includes app, the composition root. Every include that breaks it is printed.
#
# On success it prints the graph, one line per folder (llm: config core http obs store).
set -euo pipefail
cd "$(dirname "$0")/.."

# Which folders each layered folder may include; absent from this table: any, except app.
declare -A allowed=([core]="" [config]="core" [obs]="core config" [http]="core config obs"
                   [jobs]="core config obs")
composition_root=app

folders=()
for d in src/*/; do
  d=${d%/}
  folders+=("${d#src/}")
done
declare -A is_folder=()
for f in "${folders[@]}"; do is_folder[$f]=1; done

# normalize a/b/../c/./d -> a/c/d (no forks); a path that climbs out of src/ keeps its leading ..
normalize() {
  local IFS=/ part
  local -a out=()
  for part in $1; do
    case $part in
      '' | .) ;;
      ..) if ((${#out[@]})) && [[ ${out[-1]} != .. ]]; then unset 'out[-1]'; else out+=(..); fi ;;
      *) out+=("$part") ;;
    esac
  done
  normalized="${out[*]}"
}

declare -A deps=()     # folder -> "dep dep ..." (unsorted, may repeat)
declare -A example=()  # "from to" -> the first file:line that creates the edge
violations=()

while IFS= read -r hit; do
  file=${hit%%:*}
  rest=${hit#*:}
  line=${rest%%:*}
  text=${rest#*:}
  rel=${file#src/}
  [[ $rel == */* ]] || continue  # src/pch.hpp and other files at the top belong to no folder
  from=${rel%%/*}
  inc=${text#*\"}
  inc=${inc%%\"*}
  dir=${rel%/*}
  if [[ -e src/$dir/$inc ]]; then
    normalize "$dir/$inc"
  else
    normalize "$inc"
  fi
  target=$normalized
  [[ $target == */* ]] || continue  # a file at the top of src/, or unresolved without a folder
  to=${target%%/*}
  [[ -n ${is_folder[$to]:-} ]] || continue  # outside src/ or not a folder of it
  [[ $to != "$from" ]] || continue
  where="$file:$line"
  if [[ -z ${example["$from $to"]:-} ]]; then
    example["$from $to"]=$where
    deps[$from]+=" $to"
  fi
  if [[ $to == "$composition_root" ]]; then
    violations+=("$where: $from includes $to (the composition root; nothing includes it): $inc")
  elif [[ -v allowed[$from] ]] && [[ " ${allowed[$from]} " != *" $to "* ]]; then
    violations+=("$where: $from includes $to (${from} may include only: ${allowed[$from]:-no other folder}): $inc")
  fi
done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' src \
  --include='*.hpp' --include='*.cpp' --include='*.h' --include='*.cc' --include='*.ipp' \
  --include='*.inl' --include='*.hpp.in' --include='*.cpp.in' | LC_ALL=C sort -t: -k1,1 -k2,2n)

# The graph, one line per folder, dependencies sorted.
declare -A adj=()
graph=()
for f in "${folders[@]}"; do
  # shellcheck disable=SC2086  # split the dependency list on purpose
  adj[$f]=$(printf '%s\n' ${deps[$f]:-} | LC_ALL=C sort -u | tr '\n' ' ')
  adj[$f]=${adj[$f]% }
  adj[$f]=${adj[$f]# }
  graph+=("$f: ${adj[$f]:-(none)}")
done

# Cycles: depth-first search; an edge to a folder still on the stack closes a cycle.
declare -A state=()  # unset: not seen; 1: on the stack; 2: done
stack=()
cycles=()
declare -A seen_cycle=()
visit() {
  local node=$1 next i start
  state[$node]=1
  stack+=("$node")
  for next in ${adj[$node]:-}; do
    if [[ ${state[$next]:-} == 1 ]]; then
      for i in "${!stack[@]}"; do [[ ${stack[$i]} == "$next" ]] && start=$i && break; done
      local -a path=("${stack[@]:start}")
      # the same cycle found from another folder is printed once: key it by its smallest rotation
      local key="" k rot
      for k in "${!path[@]}"; do
        rot="${path[*]:k} ${path[*]:0:k}"
        rot=${rot% }
        [[ -z $key || $rot < "$key" ]] && key=$rot
      done
      if [[ -z ${seen_cycle[$key]:-} ]]; then
        seen_cycle[$key]=1
        local text="" edges="" a b
        for k in "${!path[@]}"; do
          a=${path[$k]}
          b=${path[$((k + 1))]:-$next}
          text+="$a -> "
          edges+=$'\n'"    $a -> $b: ${example["$a $b"]}"
        done
        cycles+=("  ${text}${next}${edges}")
      fi
    elif [[ -z ${state[$next]:-} ]]; then
      visit "$next"
    fi
  done
  unset 'stack[-1]'
  state[$node]=2
}
for f in "${folders[@]}"; do
  [[ -n ${state[$f]:-} ]] || visit "$f"
done

echo "folder dependencies (src/):"
printf '  %s\n' "${graph[@]}"
status=0
if ((${#cycles[@]})); then
  echo "folder dependencies form a cycle (move the code so that one edge of each goes away):"
  printf '%s\n' "${cycles[@]}"
  status=1
fi
if ((${#violations[@]})); then
  echo "layering violations (core < obs < http; config is machinery over core only; app is the composition root):"
  printf '  %s\n' "${violations[@]}"
  status=1
fi
if ((status == 0)); then
  echo "folder dependencies: ok"
fi
exit $status
