#!/usr/bin/env bash
# Debian's chromium for the explorer's browser test (tests/test_explore.py).
# Playwright drives this system browser; it never downloads a browser of its own.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends chromium
