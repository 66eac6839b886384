#!/usr/bin/env bash
# Builds {{name}}.wasm (a WASI preview-1 command) next to this script and
# prints its path on stdout.
#
# Environment:
#   WASI_CC   the C compiler (default clang: Debian 12's finds wasi-libc by itself)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cc="${WASI_CC:-clang}"

log() { echo "build.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

command -v "$cc" >/dev/null 2>&1 \
    || die "no C compiler '$cc' (Debian 12: apt-get install --no-install-recommends clang lld wasi-libc libclang-rt-14-dev-wasm32)"
# wasm32-wasi is WASI preview 1: Debian 12's clang 14 does not know the
# newer name wasm32-wasip1.
"$cc" --target=wasm32-wasi -O2 -Wall -Wextra -Wl,--strip-all \
    -o "$here/{{name}}.wasm" "$here/{{name}}.c"
log "{{name}}.wasm: $(wc -c <"$here/{{name}}.wasm" | tr -d ' ') bytes"
echo "$here/{{name}}.wasm"
