#!/usr/bin/env bash
# Cost of call-site analysis: `driveraudit tags` (decodes code around IAT references) against
# `driveraudit scan` with one import-only rule (never decodes: see TagsCliTests.A_scan_with_import_rules_only_never_disassembles)
# over the fixture corpus and over the largest fixture. Usage: tests/benchmarks/code-facts.sh [runs]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
runs=${1:-20}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
dotnet build "$root/src/Scanner" -c Release -o "$out/bin" -v q -nologo >/dev/null
da="$out/bin/driveraudit"
cat > "$out/rule.yaml" <<'YAML'
id: DA9001
name: UntaggedPoolBench
title: Untagged pool allocation
level: warning
precision: high
description: Imports the untagged allocator.
help: Use ExAllocatePool2.
message: "{artifact} imports {import}."
match:
  import: ExAllocatePool
YAML
corpus="$root/tests/fixtures/bin"
largest=$(find "$corpus" -name '*.sys' -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2)
ms() { local s e; s=$(date +%s%N); for ((k = 0; k < runs; k++)); do "$@" >/dev/null 2>&1 || true; done; e=$(date +%s%N); echo $(( (e - s) / runs / 1000000 )); }
echo "runs per figure: $runs; corpus: $(find "$corpus" -name '*.sys' | wc -l) .sys files; largest: ${largest#$root/} ($(stat -c %s "$largest") bytes)"
printf '%-40s %8s\n' "command" "ms/run"
printf '%-40s %8s\n' "inspect corpus (process floor)" "$(ms "$da" inspect "$corpus")"
printf '%-40s %8s\n' "scan corpus, import rule only" "$(ms "$da" scan "$corpus" --no-default-rules --rules "$out/rule.yaml" -f json --fail-on none -j 1)"
printf '%-40s %8s\n' "tags corpus (call-site analysis)" "$(ms "$da" tags "$corpus")"
printf '%-40s %8s\n' "scan largest, import rule only" "$(ms "$da" scan "$largest" --no-default-rules --rules "$out/rule.yaml" -f json --fail-on none -j 1)"
printf '%-40s %8s\n' "tags largest" "$(ms "$da" tags "$largest")"
