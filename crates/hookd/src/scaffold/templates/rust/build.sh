#!/usr/bin/env bash
# Builds {{name}}.wasm (a component of world hookd:lambda/lambda) next to
# this script and prints its path on stdout; cargo's output goes to stderr.
#
# Environment:
#   HOOKD_GUEST_ROUTE=auto|rustup|debian   auto (the default): rustup when it has
#       or can add wasm32-wasip2, else Debian 12's rustc-web with std built from source
#   CARGO_TARGET_DIR                       default: target/ here (the Debian route
#       uses $CARGO_TARGET_DIR/debian, so that the two routes do not rebuild each other)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
TARGET=wasm32-wasip2
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$here/target}"
# Host-oriented flags (-C target-cpu=native, a CI's -D warnings) must not
# reach the wasm build; RUSTFLAGS would also override the Debian config's
# target rustflags.
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_TARGET CARGO_BUILD_RUSTFLAGS

log() { echo "build.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

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

route="$(pick_route)"
start=$SECONDS
case "$route" in
    rustup)
        log "rustup route ($(cargo --version))"
        cargo build --release --target "$TARGET" >&2
        out_dir="$CARGO_TARGET_DIR/$TARGET/release"
        ;;
    debian)
        # rustup's proxies usually come first on PATH: call Debian's
        # binaries by full path. Only this exact rustc can build its std.
        install="apt-get install --no-install-recommends rustc-web cargo-web rust-web-src rust-web-llvm lld-22 wasi-libc"
        [ -x /usr/bin/cargo ] && [ -x /usr/bin/rustc ] \
            || die "the Debian route needs /usr/bin/cargo and /usr/bin/rustc: $install"
        [ -d /usr/lib/rustlib/src/rust/library ] \
            || die "the Debian route needs the std source (rust-web-src): $install"
        [ -e /usr/lib/wasm32-wasi/libc.a ] \
            || die "the Debian route needs wasi-libc: $install"
        target_dir="$CARGO_TARGET_DIR/debian"
        log "Debian route ($(/usr/bin/cargo --version), $(/usr/bin/rustc --version)); std is built from source the first time"
        RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$target_dir" \
            /usr/bin/cargo build --config "$here/debian-build-std.toml" --release --target "$TARGET" >&2
        out_dir="$target_dir/$TARGET/release"
        ;;
esac

built="$out_dir/{{name_snake}}.wasm"
[ -f "$built" ] || die "cargo built no $built"
cp "$built" "$here/{{name}}.wasm"
log "{{name}}.wasm: $(wc -c <"$here/{{name}}.wasm" | tr -d ' ') bytes in $((SECONDS - start)) s"
echo "$here/{{name}}.wasm"
