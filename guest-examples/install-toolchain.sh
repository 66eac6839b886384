#!/usr/bin/env bash
# Installs what guest-examples/build.sh needs on Debian 12, idempotently:
#   - the Debian Rust route (rustc-web 1.96 + its std source, wasm-component-ld,
#     lld for wasm, Debian's wasi-libc), used when rustup cannot provide
#     wasm32-wasip2;
#   - clang + wasi-libc + compiler-rt builtins for the C guests;
#   - componentize-py 0.25.1 (PyPI) for the Python guest;
#   - componentize-js (npm, exactly as js-transform/package-lock.json locks it)
#     into js-transform/node_modules for the JavaScript guest, with Debian's
#     nodejs and npm first if there is no node at all (Debian 12's nodejs is
#     18, older than the 20 componentize-js needs: build.sh then skips the
#     JavaScript guest and says so).
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

# componentize-js: npm packages local to the guest, exactly as locked.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "install-toolchain: installing nodejs npm (Debian's)"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends nodejs npm
fi
js_dir="$here/js-transform"
# npm ci empties node_modules and downloads everything again: skip it when
# node_modules was installed from this very lockfile (copied there below).
if cmp -s "$js_dir/package-lock.json" "$js_dir/node_modules/.installed-package-lock.json"; then
  echo "install-toolchain: js-transform/node_modules already installed from package-lock.json"
else
  echo "install-toolchain: npm ci in js-transform (componentize-js, as locked)"
  (cd "$js_dir" && npm ci --no-audit --no-fund)
  cp "$js_dir/package-lock.json" "$js_dir/node_modules/.installed-package-lock.json"
fi

echo "install-toolchain: done"
