#!/usr/bin/env bash
# Install Debian's chromium (used headless by tests/test_prod_browser.py) when it is missing.
# Exits non-zero with a message when it cannot be installed; the browser test then fails.
set -u
BROWSER="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ -x "$BROWSER" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure_browser: $BROWSER is missing and apt-get is not available; install chromium" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "ensure_browser: $BROWSER is missing; run as root: apt-get install -y chromium" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null \
  && $SUDO apt-get install -y -q --no-install-recommends chromium fonts-liberation >/dev/null
if [ ! -x "$BROWSER" ]; then
  echo "ensure_browser: 'apt-get install -y chromium' did not provide $BROWSER" >&2
  exit 1
fi
exit 0
