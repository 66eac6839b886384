#!/usr/bin/env bash
# Builds {{name}}.wasm (a component of world hookd:lambda/lambda, CPython
# inside) from app.py and wit/ with componentize-py, next to this script,
# and prints its path on stdout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The version hookd's own Python guest is built with.
COMPONENTIZE_PY_VERSION=0.25.1

log() { echo "build.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

command -v componentize-py >/dev/null 2>&1 \
    || die "componentize-py not found: pip install componentize-py==$COMPONENTIZE_PY_VERSION"
version="$(componentize-py --version 2>/dev/null || true)"
case "$version" in
    *" $COMPONENTIZE_PY_VERSION") ;;
    *) log "warning: found '$version'; this project was written for componentize-py $COMPONENTIZE_PY_VERSION" ;;
esac
start=$SECONDS
componentize-py -d "$here/wit" -w lambda componentize -p "$here" app -o "$here/{{name}}.wasm" >&2
log "{{name}}.wasm: $(wc -c <"$here/{{name}}.wasm" | tr -d ' ') bytes in $((SECONDS - start)) s"
echo "$here/{{name}}.wasm"
