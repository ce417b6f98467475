#!/usr/bin/env bash
# Install headless Chromium (+ chromedriver) for tests/integration/test_catalog_browser.py.
# Idempotent: does nothing when /usr/bin/chromium exists or when not run as root.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-chromium: not root, skipping (the browser tests will skip)" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y chromium chromium-driver || { apt-get update && apt-get install -y chromium chromium-driver; }
