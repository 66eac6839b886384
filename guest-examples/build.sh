#!/usr/bin/env bash
# Builds every guest in guest-examples/ and copies each result beside its
# source as <guest>/<guest>.wasm (the small ones are committed, so tests run
# on machines without a wasm toolchain). See README.md.
#
# Environment:
#   HOOKD_GUEST_ROUTE=auto|rustup|debian   how to build the Rust guests (default auto:
#       rustup when it has or can add wasm32-wasip2, else Debian's rustc-web)
#   HOOKD_REQUIRE_PYTHON_GUEST=1           fail, instead of skipping, when componentize-py is missing
#   HOOKD_REQUIRE_JS_GUEST=1               fail, instead of skipping, when node/npm/componentize-js are missing
#   CARGO_TARGET_DIR                       default: guest-examples/target (the Debian
#       route uses $CARGO_TARGET_DIR/debian so the two routes do not evict each other)
#   WASI_CC                                C compiler for wasm32-wasi (default clang)
#   GUESTS="transform c-upper ..."         build only these guests (default: all)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

RUST_GUESTS=(transform noop http-post spin memory-bomb recursion output-flood snoop wrong-world flood counter)
# The benchmark's guest, built by the Debian route with two more flags (std
# too, so in a target dir of their own; measured in docs/measurements.md):
# - -Cpanic=immediate-abort: a panic traps at once, without printing its
#   message, which leaves std's panic printing out and with it every WASI
#   import; a component that imports no WASI instantiates with one core
#   instance and ~20 imports fewer. The rustup route cannot (stable has no
#   build-std).
# - a 64 KiB stack instead of Rust's 1 MiB: the guest's memory starts at 2
#   pages instead of 17, and a fresh instance's teardown resets less
#   (+3% fresh). It still parses the deepest JSON serde_json accepts (a
#   test in crates/sandbox says so).
TUNED_GUESTS=(transform)
C_COMMAND_GUESTS=(c-upper)
C_REACTOR_GUESTS=(c-reactor)
PYTHON_GUESTS=(python-transform)
JS_GUESTS=(js-transform)
# componentize-js 0.23's dependencies (oxc-parser, jco) declare node >= 20.
JS_NODE_MAJOR=20
TARGET=wasm32-wasip2
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$here/target}"
# Host-oriented flags (e.g. -C target-cpu=native, or a CI's -D warnings) must
# not leak into wasm builds; RUSTFLAGS would also override the Debian
# config's target rustflags.
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_TARGET CARGO_BUILD_RUSTFLAGS

log() { echo "build.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

wanted() {  # wanted GUEST: true when GUESTS is unset or lists GUEST
    [ -z "${GUESTS:-}" ] && return 0
    case " $GUESTS " in *" $1 "*) return 0 ;; esac
    return 1
}

any_wanted() {  # any_wanted GUEST...: true when one of them is wanted
    local g
    for g in "$@"; do wanted "$g" && return 0; done
    return 1
}

size_of() { wc -c <"$1" | tr -d ' '; }

# --- Rust -------------------------------------------------------------------

rustup_has_target() {
    command -v rustup >/dev/null 2>&1 || return 1
    if rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
        return 0
    fi
    log "rustup has no $TARGET; trying: rustup target add $TARGET"
    rustup target add "$TARGET" >&2
}

pick_route() {
    local route="${HOOKD_GUEST_ROUTE:-auto}"
    case "$route" in
        rustup)
            rustup_has_target || die "HOOKD_GUEST_ROUTE=rustup but rustup cannot provide $TARGET"
            ;;
        debian) ;;
        auto)
            if rustup_has_target; then
                route=rustup
            else
                log "rustup cannot provide $TARGET: falling back to Debian's rustc-web"
                route=debian
            fi
            ;;
        *) die "HOOKD_GUEST_ROUTE must be auto, rustup or debian (got '$route')" ;;
    esac
    echo "$route"
}

tuned() {  # tuned GUEST: true when it is in TUNED_GUESTS
    [[ " ${TUNED_GUESTS[*]} " == *" $1 "* ]]
}

debian_cargo() {  # debian_cargo TARGET_DIR CARGO_ARGS...: Debian's cargo building std too
    local target_dir="$1"
    shift
    RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$target_dir" \
        /usr/bin/cargo build --config "$here/debian-build-std.toml" \
        --locked --release --target "$TARGET" "$@"
}

build_rust() {
    local route out_dir tuned_out_dir=""
    # Every wanted guest, and the same split by how the Debian route builds it.
    local -a packages=() plain=() tuned_packages=()
    for g in "${RUST_GUESTS[@]}"; do
        wanted "$g" || continue
        packages+=(-p "$g")
        if tuned "$g"; then tuned_packages+=(-p "$g"); else plain+=(-p "$g"); fi
    done
    [ "${#packages[@]}" -gt 0 ] || return 0
    route="$(pick_route)"

    local start=$SECONDS
    case "$route" in
        rustup)
            log "Rust guests: rustup route ($(cargo --version))"
            cargo build --locked --release --target "$TARGET" "${packages[@]}"
            out_dir="$CARGO_TARGET_DIR/$TARGET/release"
            ;;
        debian)
            # rustup's proxies usually come first on PATH: call Debian's
            # binaries by full path. Only this exact rustc can build its std.
            [ -x /usr/bin/cargo ] && [ -x /usr/bin/rustc ] \
                || die "Debian route needs /usr/bin/cargo and /usr/bin/rustc: run ./install-toolchain.sh"
            [ -d /usr/lib/rustlib/src/rust/library ] \
                || die "Debian route needs the std source (rust-web-src): run ./install-toolchain.sh"
            [ -e /usr/lib/wasm32-wasi/libc.a ] \
                || die "Debian route needs wasi-libc: run ./install-toolchain.sh"
            local target_dir="$CARGO_TARGET_DIR/debian"
            log "Rust guests: Debian route ($(/usr/bin/cargo --version), $(/usr/bin/rustc --version)); std is built from source, ~1 min the first time"
            if [ "${#plain[@]}" -gt 0 ]; then
                debian_cargo "$target_dir" "${plain[@]}"
            fi
            if [ "${#tuned_packages[@]}" -gt 0 ]; then
                debian_cargo "$target_dir-tuned" "${tuned_packages[@]}" \
                    --config 'target.wasm32-wasip2.rustflags=["-Zunstable-options", "-Cpanic=immediate-abort", "-Clink-arg=-zstack-size=65536"]'
                tuned_out_dir="$target_dir-tuned/$TARGET/release"
            fi
            out_dir="$target_dir/$TARGET/release"
            ;;
    esac
    log "Rust guests built in $((SECONDS - start)) s"

    for g in "${RUST_GUESTS[@]}"; do
        wanted "$g" || continue
        local built="$out_dir/${g//-/_}.wasm"
        if [ -n "$tuned_out_dir" ] && tuned "$g"; then
            built="$tuned_out_dir/${g//-/_}.wasm"
        fi
        [ -f "$built" ] || die "expected $built"
        cp "$built" "$g/$g.wasm"
        log "  $g/$g.wasm $(size_of "$g/$g.wasm") bytes"
    done
}

# --- C ----------------------------------------------------------------------

build_c() {
    local cc="${WASI_CC:-clang}" any=0
    for g in "${C_COMMAND_GUESTS[@]}" "${C_REACTOR_GUESTS[@]}"; do
        if wanted "$g"; then any=1; fi
    done
    [ "$any" = 1 ] || return 0
    command -v "$cc" >/dev/null 2>&1 || die "no C compiler '$cc': run ./install-toolchain.sh"
    local cflags=(--target=wasm32-wasi -O2 -Wall -Wextra -Werror -Wl,--strip-all)

    for g in "${C_COMMAND_GUESTS[@]}"; do
        wanted "$g" || continue
        "$cc" "${cflags[@]}" -o "$g/$g.wasm" "$g/$g.c"
        chmod 644 "$g/$g.wasm"
        log "  $g/$g.wasm $(size_of "$g/$g.wasm") bytes (preview-1 command)"
    done
    for g in "${C_REACTOR_GUESTS[@]}"; do
        wanted "$g" || continue
        "$cc" "${cflags[@]}" -mexec-model=reactor -o "$g/$g.wasm" "$g/$g.c"
        chmod 644 "$g/$g.wasm"
        log "  $g/$g.wasm $(size_of "$g/$g.wasm") bytes (preview-1 reactor, no _start)"
    done
}

# --- Python -----------------------------------------------------------------

build_python() {
    any_wanted "${PYTHON_GUESTS[@]}" || return 0
    if ! command -v componentize-py >/dev/null 2>&1; then
        if [ "${HOOKD_REQUIRE_PYTHON_GUEST:-0}" = 1 ]; then
            die "componentize-py not found and HOOKD_REQUIRE_PYTHON_GUEST=1: run ./install-toolchain.sh"
        fi
        log "SKIPPED Python guests (${PYTHON_GUESTS[*]}): componentize-py not found (pip install componentize-py==0.25.1, or ./install-toolchain.sh)"
        return 0
    fi
    for g in "${PYTHON_GUESTS[@]}"; do
        wanted "$g" || continue
        local start=$SECONDS
        # -p: where app.py is; the WIT is the repository's single ../wit.
        componentize-py -d "$here/../wit" -w lambda componentize -p "$here/$g" app -o "$here/$g/$g.wasm" >&2
        log "  $g/$g.wasm $(size_of "$g/$g.wasm") bytes in $((SECONDS - start)) s (not committed)"
    done
}

# --- JavaScript -------------------------------------------------------------

# Says why the JavaScript guests are skipped or, with HOOKD_REQUIRE_JS_GUEST=1, fails.
js_missing() {
    if [ "${HOOKD_REQUIRE_JS_GUEST:-0}" = 1 ]; then
        die "$1 and HOOKD_REQUIRE_JS_GUEST=1"
    fi
    log "SKIPPED JavaScript guests (${JS_GUESTS[*]}): $1"
}

build_js() {
    any_wanted "${JS_GUESTS[@]}" || return 0
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
        || { js_missing "node or npm not found (./install-toolchain.sh installs them)"; return 0; }
    local major
    major="$(node -p 'process.versions.node.split(".")[0]')"
    [ "$major" -ge "$JS_NODE_MAJOR" ] \
        || { js_missing "node $(node --version) is older than $JS_NODE_MAJOR, which componentize-js needs (Debian 12's own nodejs is 18)"; return 0; }
    for g in "${JS_GUESTS[@]}"; do
        wanted "$g" || continue
        # Installed from $g/package-lock.json by install-toolchain.sh (npm ci).
        local cjs="$here/$g/node_modules/.bin/componentize-js"
        [ -x "$cjs" ] || { js_missing "$g/node_modules has no componentize-js (./install-toolchain.sh runs npm ci there)"; return 0; }
        local start=$SECONDS
        # The guest does no HTTP: without these features the component
        # imports no wasi:http. The WIT is the repository's single ../wit.
        "$cjs" "$here/$g/app.js" --wit "$here/../wit" --world-name lambda \
            --disable http fetch-event -o "$here/$g/$g.wasm" >&2
        log "  $g/$g.wasm $(size_of "$g/$g.wasm") bytes in $((SECONDS - start)) s (not committed)"
    done
}

build_rust
build_c
build_python
build_js
log "done"
