#!/usr/bin/env bash
# Make sure the browser the trigger-form test drives is installed: Debian's chromium and its
# chromedriver (the test points Selenium at /usr/bin/chromium and /usr/bin/chromedriver, so no
# browser is ever downloaded). Needs root (apt-get) when the packages are missing.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium/chromedriver missing and no apt-get: install them by hand (the browser test fails in CI)" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "installing chromium and chromium-driver (Debian packages)"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
/usr/bin/chromium --version
