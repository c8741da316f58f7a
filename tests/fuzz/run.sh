#!/usr/bin/env bash
# Long fuzzing, outside CI (CI runs the same FsCheck properties briefly as part of `dotnet test`).
#   1. the FsCheck properties (PE reader, dump reader, IAT resolver alone) at length, in process, with shrinking;
#      shrunk failing inputs are written to tests/fuzz/failures/ (commit them under tests/fixtures/fuzz/);
#   2. PE mutants through the real CLI in batches, with wall time and peak memory per batch (upper bounds for
#      every input in it) and any crash, hang or internal error; slow batches are rerun file by file.
# Usage: tests/fuzz/run.sh [--properties N] [--pe N] [--jobs J] [--seeds DIR]...
#   --properties N   mutants per property (default 5000; 0 skips)
#   --pe N           PE mutants through the CLI (default 10000; 0 skips)
#   --jobs J         CLI batches in parallel (default 2: the machine is shared)
#   --seeds DIR      extra PE seed files or folders (repeatable), e.g. /usr/lib/x86_64-linux-gnu/wine/x86_64-windows;
#                    the fixtures under tests/fixtures/bin are always seeds
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
properties=5000 pe=10000 jobs=2 seeds=("$root/tests/fixtures/bin")
while [[ $# -gt 0 ]]; do
  case "$1" in
    --properties) properties="$2"; shift 2 ;;
    --pe) pe="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --seeds) seeds+=("$2"); shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

if [[ "$properties" -gt 0 ]]; then
  mkdir -p "$here/failures"
  echo "== FsCheck properties, $properties mutants each"
  DRIVERAUDIT_FUZZ_ITERATIONS="$properties" DRIVERAUDIT_FUZZ_FAILURES="$here/failures" DRIVERAUDIT_FUZZ_REPORT="$here/failures/report.txt" \
    /usr/bin/time -f "property run: %e s wall, peak %M KB (test host, all properties)" \
    dotnet test "$root/tests/DriverAudit.Scanner.Tests" -c Release --filter "FullyQualifiedName~Fuzz.FuzzProperties" --logger "console;verbosity=normal"
fi

if [[ "$pe" -gt 0 ]]; then
  out="$(mktemp -d)"
  echo "== building driveraudit (Release) into $out"
  dotnet build -c Release "$root/src/Scanner" -o "$out" >/dev/null
  echo "== $pe PE mutants through 'driveraudit scan'"
  /usr/bin/python3 "$here/pe_mutants.py" --driveraudit "$out/driveraudit" --count "$pe" --jobs "$jobs" \
    --keep "$here/failures" "${seeds[@]}"
fi
