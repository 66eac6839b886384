#!/usr/bin/env bash
# Installs what guest-examples/build.sh needs on Debian 12, idempotently:
#   - the Debian Rust route (rustc-web 1.96 + its std source, wasm-component-ld,
#     lld for wasm, Debian's wasi-libc), used when rustup cannot provide
#     wasm32-wasip2;
#   - clang + wasi-libc + compiler-rt builtins for the C guests;
#   - componentize-py 0.25.1 (PyPI) for the Python guest.
# Run as root (CI does). Packages already present are not reinstalled and
# `apt-get update` runs only when something is missing.
set -euo pipefail

APT_PACKAGES=(
  # Debian Rust route
  rustc-web cargo-web rust-web-src rust-web-llvm lld-22 wasi-libc
  # C guests
  clang lld libclang-rt-14-dev-wasm32
)
COMPONENTIZE_PY_VERSION=0.25.1

SUDO=""
if [ "$(id -u)" != 0 ]; then
  SUDO="sudo"
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-toolchain: installing apt packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
else
  echo "install-toolchain: apt packages already installed"
fi

# componentize-py: a wheel from PyPI. Use whichever python3 is first on PATH.
if command -v componentize-py >/dev/null 2>&1 \
   && componentize-py --version 2>/dev/null | grep -q "$COMPONENTIZE_PY_VERSION"; then
  echo "install-toolchain: componentize-py $COMPONENTIZE_PY_VERSION already installed"
else
  if ! python3 -m pip --version >/dev/null 2>&1; then
    echo "install-toolchain: installing python3-pip"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends python3-pip
  fi
  echo "install-toolchain: pip install componentize-py==$COMPONENTIZE_PY_VERSION"
  # Debian 12's system python is "externally managed" (PEP 668).
  python3 -m pip install "componentize-py==$COMPONENTIZE_PY_VERSION" \
    || python3 -m pip install --break-system-packages "componentize-py==$COMPONENTIZE_PY_VERSION"
  # pyenv keeps console scripts behind shims that need a rehash.
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
fi

echo "install-toolchain: done"
