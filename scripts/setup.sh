#!/usr/bin/env bash
# Installs what netpol-harness needs on a Debian/Ubuntu machine. Idempotent: installs only
# what is missing, so `make test` and `make run` can call it every time.
set -euo pipefail

# Debian packages and the command each provides (`a|b`: any of these commands will do).
packages=(
  "nftables:nft"
  "iproute2:ip"
  "postgresql:/usr/lib/postgresql/15/bin/postgres"
  "redis-server:redis-server"
  "dnsmasq-base:dnsmasq"
  "conntrack:conntrack"
  # Headless browser for the HTML report test (harness/tests/html_browser.rs). A Chromium or
  # Chrome already installed will do (GitHub's Ubuntu runners have one; Ubuntu's apt
  # `chromium` is only a shim that installs a snap).
  "chromium:chromium|chromium-browser|google-chrome"
)

missing=()
for entry in "${packages[@]}"; do
  pkg=${entry%%:*}
  cmd=${entry#*:}
  if [[ $cmd == /* ]]; then
    [[ -x $cmd ]] || missing+=("$pkg")
  else
    found=0
    IFS='|' read -ra alternatives <<<"$cmd"
    for alternative in "${alternatives[@]}"; do
      if command -v "$alternative" >/dev/null 2>&1 || [[ -x /usr/sbin/$alternative ]]; then
        found=1
      fi
    done
    ((found)) || missing+=("$pkg")
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
