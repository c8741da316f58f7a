#!/usr/bin/env bash
# Fleet sweeps: (1) the result cache on Wine's x64 PE builds (a real corpus of a few thousand PE files): a cold scan
# with --cache, then a warm one (every file only hashed); (2) merging simulated host logs: N copies of one real
# per-host SARIF log, each with its own host label and a few host-specific results, merged for N = 10, 100, 1000;
# wall time and max RSS from /usr/bin/time. Counts (results, hits) are printed so the figures can be checked.
# Usage: tests/benchmarks/bench-fleet.sh [runs, default 3]   (needs: apt-get install libwine; python3)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
runs="${1:-3}"
work="${BENCH_DIR:-$root/.bench/fleet}"
wine="${WINE_DIR:-/usr/lib/x86_64-linux-gnu/wine/x86_64-windows}"
mkdir -p "$work"
[ -d "$wine" ] || { echo "no Wine x64 PE builds at $wine (apt-get install libwine)" >&2; exit 1; }

dotnet build -c Release "$root/src/Scanner" -nologo -v q >/dev/null
da=(dotnet "$root/src/Scanner/bin/Release/net10.0/driveraudit.dll")

files=$(find "$wine" -type f | wc -l)
echo "Cache: $files files (Wine x64 PE builds) under $wine"
printf '%-6s %8s %12s %s\n' run "wall s" "max RSS KB" "cache"
for i in $(seq "$runs"); do
  rm -f "$work/cache.sqlite"*
  for phase in cold warm; do
    /usr/bin/time -f "%e %M" -o "$work/time.txt" \
      "${da[@]}" scan "$wine" --include '**/*' --fail-on none -f json --cache "$work/cache.sqlite" -j 2 \
      > "$work/$phase.jsonl" 2> "$work/$phase.err"
    read -r wall rss < "$work/time.txt"
    printf '%-6s %8s %12s %s\n' "$phase" "$wall" "$rss" "$(grep -o 'Cache: .*' "$work/$phase.err")"
  done
  cmp -s "$work/cold.jsonl" "$work/warm.jsonl" && echo "       warm output identical to cold ($(grep -c '"kind":"result"' "$work/warm.jsonl") results)" \
    || echo "       WARM OUTPUT DIFFERS"
done

echo
echo "Merge: N simulated hosts (each: one real per-host log of $(ls "$root/tests/fixtures/bin/x64" | wc -l) fixture entries, relabelled)"
"${da[@]}" scan "$root/tests/fixtures/bin/x64" --host template --fail-on none -o "$work/template.sarif" 2>/dev/null
python3 - "$work" <<'PY'
import json, sys, os, copy
work = sys.argv[1]
base = json.load(open(os.path.join(work, "template.sarif")))
for n in (10, 100, 1000):
    d = os.path.join(work, f"hosts-{n}")
    os.makedirs(d, exist_ok=True)
    for h in range(n):
        log = copy.deepcopy(base)
        run = log["runs"][0]
        name = f"host-{h:04d}"
        run["properties"]["host"] = name
        # Each host drops a different result, so host lists differ from result to result.
        results = run["results"]
        if results:
            del results[h % len(results)]
        for r in results:
            r["properties"]["hosts"] = [name]
        json.dump(log, open(os.path.join(d, name + ".sarif"), "w"))
PY
printf '%-6s %8s %12s %10s %s\n' hosts "wall s" "max RSS KB" "ms/host" output
for n in 10 100 1000; do
  for i in $(seq "$runs"); do
    rm -f "$work/fleet-$n.sqlite"
    /usr/bin/time -f "%e %M" -o "$work/time.txt" "${da[@]}" merge "$work/hosts-$n"/*.sarif -o "$work/fleet-$n.sarif" --db "$work/fleet-$n.sqlite" 2> "$work/merge.err"
    read -r wall rss < "$work/time.txt"
    printf '%-6s %8s %12s %10s %s\n' "$n" "$wall" "$rss" "$(awk -v w="$wall" -v n="$n" 'BEGIN{printf "%.1f", 1000*w/n}')" "$(tail -1 "$work/merge.err")"
  done
done
