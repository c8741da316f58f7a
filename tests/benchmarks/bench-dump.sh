#!/usr/bin/env bash
# Shows that scanning a kernel dump costs time and memory in proportion to the module pages read, not to the
# dump's size: a small complete dump and a sparse multi-GB one (same modules, a big run table whose pages are
# holes) are scanned with the same rule; wall time and max RSS come from /usr/bin/time.
# Usage: tests/benchmarks/bench-dump.sh [GiB of the big dump, default 8] [runs, default 3]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
gib="${1:-8}"
runs="${2:-3}"
work="${BENCH_DIR:-$root/.bench/dump}"
mkdir -p "$work"

dotnet build -c Release "$root/src/Scanner" -nologo -v q >/dev/null
dotnet build -c Release "$root/tests/benchmarks/DumpBench" -nologo -v q >/dev/null
scanner="$root/src/Scanner/bin/Release/net10.0/driveraudit.dll"
dotnet "$root/tests/benchmarks/DumpBench/bin/Release/net10.0/DumpBench.dll" "$root/tests/fixtures/bin/x64" "$work" "$gib"

cat > "$work/da1001.yaml" <<'YAML'
id: DA1001
name: UntaggedPoolAllocation
title: Untagged pool allocation
level: warning
precision: very-high
description: ExAllocatePool and ExAllocatePoolWithQuota tag allocations 'None'.
help: Use ExAllocatePool2 with a driver-specific tag.
message: "{artifact} imports {import}."
match:
  any:
    - import: ExAllocatePool
    - import: ExAllocatePoolWithQuota
YAML

printf '\n%-10s %14s %14s %10s %12s %8s\n' dump "file size" "on disk" "wall s" "max RSS KB" results
for name in small big; do
  dump="$work/$name.dmp"
  size=$(stat -c %s "$dump")
  disk=$(( $(stat -c %b "$dump") * $(stat -c %B "$dump") ))
  for i in $(seq "$runs"); do
    /usr/bin/time -f "%e %M" -o "$work/time.txt" \
      dotnet "$scanner" scan "$dump" --no-default-rules --rules "$work/da1001.yaml" \
        --format sarif --output "$work/$name.sarif" --no-progress 2>>"$work/stderr.txt" || [ $? -eq 1 ]
    read -r wall rss < "$work/time.txt"
    results=$(grep -o '"ruleId"' "$work/$name.sarif" | wc -l)
    printf '%-10s %14s %14s %10s %12s %8s\n' "$name" "$size" "$disk" "$wall" "$rss" "$results"
  done
done
