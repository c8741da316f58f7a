#!/usr/bin/env bash
# Times driveraudit on real PE binaries against `yara -r -p N` with the equivalent import rule
# (pe.imports("ntoskrnl.exe", "ExAllocatePool"), DA1001). Whole-process wall time, medians of alternating runs,
# ratios to yara, user+sys CPU, peak RSS (GNU time), -j 1 against -j N, and one-file latency.
#
#   tests/benchmarks/bench-real.sh [--runs N] [--jobs N] [--only x64-sys,x64-all,i386-sys,i386-all,real] [--real DIR]
#                                  [--build aot|r2r|jit] [--driveraudit PATH]
#
# --build picks how this checkout is published for timing (Release, linux-x64): aot (default) = Native AOT into
# .bench/aot, the fastest-starting build (README, Install); r2r = framework-dependent ReadyToRun into .bench/bin;
# jit = plain framework-dependent build (what `dotnet tool install` and `dotnet run` run) into .bench/jit.
# --driveraudit times that executable instead of publishing this checkout, e.g. to compare two builds.
#
# Corpora:
#   x64-sys / x64-all   Wine's x64 PE builds (Debian libwine: /usr/lib/x86_64-linux-gnu/wine/x86_64-windows),
#                       the .sys files only (driveraudit's default include) and every file (--include '**/*').
#   i386-sys / i386-all Wine's i386 PE builds. When libwine:i386 is not installed (it often cannot be: it needs
#                       multiarch), `apt-get download libwine:i386` + `dpkg-deb -x` unpack it into .bench/wine-i386.
#   real                Real third-party drivers from --real DIR, default ../shared/real-drivers next to the
#                       repository when present. Read where they are, never copied.
# Installs libwine, yara, hyperfine and GNU time with apt-get when they are missing. Needs the .NET SDK.
# The machine should be quiet: other load shows in wall time (the CPU columns are steadier).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
runs=5
jobs=$(nproc)
only="x64-sys,x64-all,i386-sys,i386-all,real"
real="$repo/../shared/real-drivers"
da=""
build=aot
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --real) real=$2; shift 2 ;;
    --driveraudit) da=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
wants() { [[ ",$only," == *",$1,"* ]]; }

work="$repo/.bench"
mkdir -p "$work"

apt_install() { # apt_install PACKAGE...: root only; under a lock shared with other apt users
  if [ "$(id -u)" != 0 ]; then echo "missing $*: install them (apt-get install $*)" >&2; exit 2; fi
  flock /tmp/apt.lock apt-get install -y -q "$@" >/dev/null
}
command -v yara >/dev/null || apt_install yara
command -v hyperfine >/dev/null || apt_install hyperfine
[ -x /usr/bin/time ] || apt_install time

x64=/usr/lib/x86_64-linux-gnu/wine/x86_64-windows
if (wants x64-sys || wants x64-all) && [ ! -d "$x64" ]; then apt_install libwine; fi

i386=/usr/lib/i386-linux-gnu/wine/i386-windows
if (wants i386-sys || wants i386-all) && [ ! -d "$i386" ]; then
  cache="$work/wine-i386"
  i386="$cache/usr/lib/i386-linux-gnu/wine/i386-windows"
  if [ ! -d "$i386" ]; then
    echo "fetching libwine:i386 into $cache…" >&2
    mkdir -p "$cache/deb"
    (cd "$cache/deb" && apt-get download -q libwine:i386 >/dev/null)
    dpkg-deb -x "$(ls "$cache"/deb/libwine_*_i386.deb | head -1)" "$cache"
  fi
fi

if [ -z "$da" ]; then
  case "$build" in
    # Native AOT: ILC needs clang (or gcc) and takes minutes; the libe_sqlite3 it writes beside the executable is only
    # for --cache/merge/report.
    aot) flags=(-p:PublishAot=true); command -v clang >/dev/null || command -v gcc >/dev/null || apt_install clang ;;
    r2r) flags=(--self-contained false -p:PublishReadyToRun=true) ;;
    jit) flags=(--self-contained false) ;;
    *) echo "--build: aot, r2r or jit" >&2; exit 2 ;;
  esac
  echo "building driveraudit (Release, $build)…" >&2
  dotnet publish "$repo/src/Scanner" -c Release -r linux-x64 "${flags[@]}" -o "$work/$build" -nologo -v q >/dev/null
  da="$work/$build/driveraudit"
fi
echo "driveraudit: $da ($("$da" --version)); yara $(yara --version); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"

cat > "$work/da1001.yar" <<'YAR'
import "pe"
rule DA1001_UntaggedPoolAllocation {
  condition:
    pe.imports(/ntoskrnl\.exe/i, /^ExAllocatePool$/) or pe.imports(/ntoskrnl\.exe/i, /^ExAllocatePoolWithQuota$/)
}
YAR

# time_one LABEL CMD...: one run; appends "wall user sys maxrss_kb" to $work/t.LABEL
time_one() {
  local label=$1; shift
  /usr/bin/time -o "$work/time.txt" -f '%e %U %S %M' "$@" >/dev/null 2>&1 || true
  cat "$work/time.txt" >> "$work/t.$label"
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -v c="$2" '{ print $c }' "$work/t.$1"; }
med() { col "$1" "$2" | median; }

report() { # report LABEL...: median wall, CPU, RSS per label, and the ratio to the first label's wall
  local base; base=$(med "$1" 1)
  printf '  %-26s %9s %9s %10s %9s\n' "" "wall (s)" "CPU (s)" "RSS (MB)" "÷ $1"
  for l in "$@"; do
    local w u s m
    w=$(med "$l" 1); u=$(med "$l" 2); s=$(med "$l" 3); m=$(col "$l" 4 | sort -n | tail -1)
    awk -v l="$l" -v w="$w" -v u="$u" -v s="$s" -v m="$m" -v b="$base" \
      'BEGIN { printf "  %-26s %9.2f %9.2f %10.1f %8.2fx\n", l, w, u + s, m / 1024, w / b }'
  done
}

bench() { # bench NAME DIR SYS_ONLY
  local name=$1 dir=$2 sysonly=$3 n include=()
  if [ "$sysonly" = 1 ]; then
    find "$dir" -type f -name '*.sys' | sort > "$work/list.txt"
  else
    find "$dir" -type f | sort > "$work/list.txt"
    include=(--include '**/*')
  fi
  n=$(wc -l < "$work/list.txt")
  local bytes; bytes=$(xargs -d '\n' cat < "$work/list.txt" | wc -c)
  echo
  echo "== $name: $n files, $((bytes / 1048576)) MB ($dir) — $runs alternating runs, medians; yara and driveraudit -j $jobs"
  rm -f "$work"/t.*
  local common=(scan "$dir" "${include[@]}" --format json --fail-on none -q -o "$work/out.jsonl")
  # Warm the page cache once so the first measured run is not the one that reads from disk.
  "$da" "${common[@]}" >/dev/null 2>&1 || true
  yara -r -p "$jobs" --scan-list "$work/da1001.yar" "$work/list.txt" >/dev/null 2>&1 || true
  for _ in $(seq "$runs"); do
    time_one yara yara -p "$jobs" --scan-list "$work/da1001.yar" "$work/list.txt"
    time_one full "$da" "${common[@]}" -j "$jobs"
    time_one DA1001 "$da" "${common[@]}" -j "$jobs" --only DA1001
    time_one full-j1 "$da" "${common[@]}" -j 1
  done
  report yara full DA1001 full-j1
  awk -v a="$(med full-j1 1)" -v b="$(med full "1")" -v u="$(med full 2)" -v s="$(med full 3)" -v j="$jobs" \
    'BEGIN { printf "  -j %d speed-up over -j 1: %.2fx (wall); CPU/wall at -j %d: %.2f\n", j, a / b, j, (u + s) / b }'
  # Counts, to see that both look at the same files: yara's matches and driveraudit's DA1001 results.
  local ym dm
  ym=$(yara -p "$jobs" --scan-list "$work/da1001.yar" "$work/list.txt" 2>/dev/null | wc -l)
  "$da" "${common[@]}" -j "$jobs" --only DA1001 >/dev/null 2>&1 || true
  dm=$(grep -c '"ruleId":"DA1001"' "$work/out.jsonl" || true)
  echo "  yara matches: $ym   driveraudit DA1001 results: $dm"
}

wants x64-sys && bench "Wine x64, .sys" "$x64" 1
wants x64-all && bench "Wine x64, every file" "$x64" 0
wants i386-sys && bench "Wine i386, .sys" "$i386" 1
wants i386-all && bench "Wine i386, every file" "$i386" 0
if wants real; then
  if [ -d "$real" ]; then bench "real drivers" "$(cd "$real" && pwd)" 1
  else echo; echo "== real drivers: $real not present, skipped"; fi
fi

# One file: start-up dominates. hyperfine warms up and reports mean ± σ.
one=$(find "$x64" -name 'hidclass.sys' | head -1)
if [ -n "$one" ]; then
  echo
  echo "== one file ($one)"
  hyperfine -N -w 3 -r "$((runs * 4))" --export-json "$work/one.json" \
    "$da --version" \
    "$da scan $one -o $work/one.sarif --fail-on none" \
    "yara $work/da1001.yar $one" 2>/dev/null | grep -E 'Benchmark|Time' || true
fi
