#!/usr/bin/env bash
# Installs what building and testing rfm_segmentation needs on Debian (bookworm):
#   - Debian packages postgresql-15, postgresql-server-dev-15, postgresql-15-cron, libclang-dev,
#     sudo, python3, python3-venv (the CLV tests compare against lifetimes in a virtualenv)
#   - cargo-pgrx 0.18.1 (the version pinned in Cargo.toml)
#   - `cargo pgrx init` pointed at the Debian PostgreSQL 15
# Each step is skipped when it is already done, so a second run takes a second or two.
# Works as root or as a user with (password-less, when there is no terminal) sudo.
#   bash scripts/setup.sh
set -euo pipefail

PG_MAJOR=15
PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
PGRX_VERSION=0.18.1
PACKAGES=("postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" "postgresql-$PG_MAJOR-cron" libclang-dev sudo python3 python3-venv)

step() { echo "==> setup: $*"; }

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif [ -t 0 ]; then
  SUDO=(sudo)
else
  SUDO=(sudo -n) # no terminal: fail at once instead of waiting for a password
fi

# cargo installed by rustup lives here; make it (and cargo-pgrx) visible
if [ -d "$HOME/.cargo/bin" ]; then
  case ":$PATH:" in *":$HOME/.cargo/bin:"*) ;; *) export PATH="$HOME/.cargo/bin:$PATH" ;; esac
fi
command -v cargo >/dev/null || { echo "setup: cargo not found (install Rust with rustup first)" >&2; exit 1; }

# 1. Debian packages
installed() { dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed'; }
missing=()
for pkg in "${PACKAGES[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  step "Debian packages already installed (${PACKAGES[*]})"
else
  if [ ${#SUDO[@]} -gt 0 ] && ! command -v sudo >/dev/null; then
    echo "setup: need root or sudo to install: ${missing[*]}" >&2
    exit 1
  fi
  step "installing Debian packages: ${missing[*]}"
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
[ -x "$PG_CONFIG" ] || { echo "setup: $PG_CONFIG not found after installing packages" >&2; exit 1; }

# 2. cargo-pgrx, exactly the version the crate is pinned to
have_pgrx=$(cargo pgrx --version 2>/dev/null || true)
if [ "$have_pgrx" = "cargo-pgrx $PGRX_VERSION" ]; then
  step "cargo-pgrx $PGRX_VERSION already installed"
else
  step "installing cargo-pgrx $PGRX_VERSION (found: ${have_pgrx:-none}; this takes a few minutes)"
  cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
fi

# 3. cargo pgrx init for PostgreSQL 15 (root: pgrx skips its own initdb; nothing is started)
pgrx_config="${PGRX_HOME:-$HOME/.pgrx}/config.toml"
if [ -f "$pgrx_config" ] && grep -Eq "^[[:space:]]*pg${PG_MAJOR}[[:space:]]*=" "$pgrx_config"; then
  step "cargo pgrx already initialised for pg$PG_MAJOR ($pgrx_config)"
else
  step "cargo pgrx init --pg$PG_MAJOR $PG_CONFIG"
  cargo pgrx init "--pg$PG_MAJOR" "$PG_CONFIG"
fi

step "done ($("$PG_CONFIG" --version), $(cargo pgrx --version))"
