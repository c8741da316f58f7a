#!/usr/bin/env bash
# Times `driveraudit scan` (default rule pack, SARIF output) against `yara -r` with an equivalent
# pe.imports rule on the same corpus, and prints wall time and peak memory (max RSS) of both.
#
#   tests/benchmarks/bench-scan.sh [--files N] [--corpus DIR] [--scaling] [--build aot|r2r|jit]
#
# --build: how driveraudit is published (Release, linux-x64): aot (default) = Native AOT, r2r = framework-dependent
# ReadyToRun, jit = plain framework-dependent build (what `dotnet tool install` runs); see bench-real.sh.
#
# Without --corpus, a corpus of N files (default 2000) is made by copying the committed fixture
# drivers. --scaling also scans 1,000 and 10,000 files to show that peak memory does not grow with
# the number of files. Needs: the .NET SDK, yara and GNU time (apt-get install yara time).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
files=2000
corpus=""
scaling=0
build=aot
while [ $# -gt 0 ]; do
  case "$1" in
    --files) files=$2; shift 2 ;;
    --corpus) corpus=$2; shift 2 ;;
    --scaling) scaling=1; shift ;;
    --build) build=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
for tool in yara /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install yara time" >&2; exit 2; }
done

work="$repo/.bench"
mkdir -p "$work"
case "$build" in
  aot) flags=(-p:PublishAot=true) ;; # a CLI's start-up should not be spent in the JIT (ILC needs clang or gcc)
  r2r) flags=(--self-contained false -p:PublishReadyToRun=true) ;;
  jit) flags=(--self-contained false) ;;
  *) echo "--build: aot, r2r or jit" >&2; exit 2 ;;
esac
echo "building driveraudit (Release, $build)…" >&2
dotnet publish "$repo/src/Scanner" -c Release -r linux-x64 "${flags[@]}" -o "$work/$build" -nologo -v q >/dev/null
da="$work/$build/driveraudit"

make_corpus() { # make_corpus N DIR: N copies of the fixture PEs, 100 per folder
  local n=$1 dir=$2
  [ -f "$dir/.count" ] && [ "$(cat "$dir/.count")" = "$n" ] && return
  rm -rf "$dir"; mkdir -p "$dir"
  mapfile -t src < <(find "$repo/tests/fixtures/bin" -type f -name '*.sys' | sort)
  local i=0
  while [ $i -lt "$n" ]; do
    local sub="$dir/d$((i / 100))"; mkdir -p "$sub"
    cp "${src[$((i % ${#src[@]}))]}" "$sub/f$i.sys"
    i=$((i + 1))
  done
  echo "$n" > "$dir/.count"
}

cat > "$work/da1001.yar" <<'YAR'
import "pe"
rule DA1001_UntaggedPoolAllocation {
  condition:
    pe.imports(/ntoskrnl\.exe/i, /^ExAllocatePool$/) or pe.imports(/ntoskrnl\.exe/i, /^ExAllocatePoolWithQuota$/)
}
YAR

measure() { # measure LABEL CMD...: prints wall time and peak RSS
  local label=$1; shift
  /usr/bin/time -o "$work/time.txt" -f '%e %M' "$@" >/dev/null 2>&1 || true
  local wall mem; read -r wall mem < "$work/time.txt"
  awk -v l="$label" -v w="$wall" -v m="$mem" 'BEGIN { printf "%-34s %8.2f s %9.1f MB\n", l, w, m / 1024 }'
}

run_pair() { # run_pair DIR
  local dir=$1 n
  n=$(find "$dir" -type f -name '*.sys' | wc -l)
  echo "corpus: $dir ($n files)"
  "$da" scan "$dir" -o "$work/out.sarif" --fail-on none >/dev/null 2>&1 || true # warm the page cache
  measure "driveraudit scan (default pack)" "$da" scan "$dir" -o "$work/out.sarif" --fail-on none
  measure "driveraudit scan (json, default pack)" "$da" scan "$dir" --format json --fail-on none
  measure "driveraudit scan (json, DA1001 only)" "$da" scan "$dir" --format json --fail-on none --only DA1001
  measure "yara -r (pe.imports rule)" yara -r "$work/da1001.yar" "$dir"
  echo "  driveraudit results: $(grep -o '"ruleId"' "$work/out.sarif" | wc -l)  yara matches: $(yara -r "$work/da1001.yar" "$dir" | wc -l)"
}

if [ -n "$corpus" ]; then
  run_pair "$corpus"
else
  make_corpus "$files" "$work/corpus-$files"
  run_pair "$work/corpus-$files"
fi
if [ $scaling -eq 1 ]; then
  for n in 1000 10000; do
    make_corpus $n "$work/corpus-$n"
    run_pair "$work/corpus-$n"
  done
fi
