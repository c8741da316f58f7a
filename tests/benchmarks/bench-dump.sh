#!/usr/bin/env bash
# Shows that scanning a kernel dump costs time and memory in proportion to the module pages read, not to the
# dump's size: a small complete dump and a sparse multi-GB one (same modules, a big run table whose pages are
# holes) are scanned with the same rule; wall time and max RSS come from /usr/bin/time.
# Then a sparse raw memory image of the same size (no header: the page-table root, ntoskrnl and its module list are
# found by search) against its modules scanned as files: wall, user and system CPU time and peak RSS from
# /usr/bin/time -v. The generated files are sparse (a few MB on disk whatever the size); the script checks free space.
# Usage: tests/benchmarks/bench-dump.sh [GiB of the big dump, default 8] [runs, default 3]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
gib="${1:-8}"
runs="${2:-3}"
work="${BENCH_DIR:-$root/.bench/dump}"
mkdir -p "$work"
# The images are sparse, but a filesystem without holes would write them out in full: refuse when it could not hold them.
free_kb=$(df -Pk "$work" | awk 'NR == 2 { print $4 }')
if [ "$free_kb" -lt $(( gib * 2 * 1024 * 1024 + 1024 * 1024 )) ]; then
  echo "bench-dump: $work has $((free_kb / 1024)) MiB free; two $gib GiB images need up to $((gib * 2)) GiB if the filesystem does not keep holes" >&2
  exit 2
fi

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

# Raw image vs its modules as files (same DA1001 rule; the folder needs --include '**/*' for ntoskrnl.exe and hal.dll).
seconds() { awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; printf "%.2f", s }'; }
printf '\n%-10s %14s %14s %8s %8s %8s %12s %8s\n' input "size" "on disk" "wall s" "user s" "sys s" "max RSS KB" results
for name in big.raw modules; do
  target="$work/$name"
  size=$(du -sb --apparent-size "$target" | cut -f1)
  disk=$(du -sB1 "$target" | cut -f1)
  extra=()
  [ -d "$target" ] && extra=(--include '**/*')
  for i in $(seq "$runs"); do
    /usr/bin/time -v -o "$work/time-v.txt" \
      dotnet "$scanner" scan "$target" "${extra[@]}" --no-default-rules --rules "$work/da1001.yaml" \
        --format sarif --output "$work/$name.sarif" --no-progress 2>>"$work/stderr.txt" || [ $? -eq 1 ]
    wall=$(grep 'Elapsed (wall clock)' "$work/time-v.txt" | awk '{ print $NF }' | seconds)
    user=$(awk -F': ' '/User time/ { print $2 }' "$work/time-v.txt")
    sys=$(awk -F': ' '/System time/ { print $2 }' "$work/time-v.txt")
    rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/time-v.txt")
    results=$(grep -o '"ruleId"' "$work/$name.sarif" | wc -l)
    printf '%-10s %14s %14s %8s %8s %8s %12s %8s\n' "$name" "$size" "$disk" "$wall" "$user" "$sys" "$rss" "$results"
  done
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
