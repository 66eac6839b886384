#!/usr/bin/env bash
# Builds {{name}}.wasm (a component of world hookd:lambda/lambda,
# SpiderMonkey inside) from app.js and wit/ with componentize-js, next to
# this script, and prints its path on stdout. The first run installs
# componentize-js into node_modules/ with npm ci.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
# componentize-js 0.23's dependencies (oxc-parser, jco) need node 20.
NODE_MAJOR=20

log() { echo "build.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
    || die "node and npm are needed (Node.js $NODE_MAJOR or newer)"
major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$major" -ge "$NODE_MAJOR" ] \
    || die "node $(node --version) is older than $NODE_MAJOR, which componentize-js needs"
if [ ! -x node_modules/.bin/componentize-js ]; then
    log "npm ci: componentize-js as package-lock.json locks it"
    npm ci --no-audit --no-fund >&2
fi
start=$SECONDS
# No HTTP in this guest: without these features the component imports no
# wasi:http (drop them to use fetch(); hookd grants a hook's guests only
# the hosts its config.capabilities.http lists).
node_modules/.bin/componentize-js app.js --wit wit --world-name lambda \
    --disable http fetch-event -o "{{name}}.wasm" >&2
log "{{name}}.wasm: $(wc -c <"{{name}}.wasm" | tr -d ' ') bytes in $((SECONDS - start)) s"
echo "$here/{{name}}.wasm"
