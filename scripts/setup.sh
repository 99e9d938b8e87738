#!/usr/bin/env bash
# Installs what netpol-harness needs on a Debian/Ubuntu machine. Idempotent: installs only
# what is missing, so `make test` and `make run` can call it every time.
set -euo pipefail

# Debian packages and the command each provides.
packages=(
  "nftables:nft"
  "iproute2:ip"
  "postgresql:/usr/lib/postgresql/15/bin/postgres"
  "redis-server:redis-server"
  "dnsmasq-base:dnsmasq"
  "conntrack:conntrack"
  # Headless browser for the HTML report test (harness/tests/html_browser.rs).
  "chromium:chromium"
)

missing=()
for entry in "${packages[@]}"; do
  pkg=${entry%%:*}
  cmd=${entry#*:}
  if [[ $cmd == /* ]]; then
    [[ -x $cmd ]] || missing+=("$pkg")
  else
    command -v "$cmd" >/dev/null 2>&1 || [[ -x /usr/sbin/$cmd ]] || missing+=("$pkg")
  fi
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing packages: ${missing[*]}; run as root (sudo make ...) or install them" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # postgresql's post-install would create and start a system cluster; the harness starts
  # its own servers in its own namespaces, so the packaged services are not needed.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found: install a Rust toolchain (1.85 or newer) with rustup" >&2
  exit 1
fi
