#!/usr/bin/env bash
# Installs the system packages Swiftlet's commands need, only when missing (Debian/Ubuntu).
set -euo pipefail
need=()
dpkg -s libopenblas-dev >/dev/null 2>&1 || need+=(libopenblas-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
# valgrind's callgrind counts the instructions of the regression gate (make bench-gate).
command -v valgrind >/dev/null 2>&1 || need+=(valgrind)
if [ ${#need[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps: please install ${need[*]} (no apt-get here)" >&2; exit 1
  fi
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "install-deps: installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The ARM64 kernel check (make test-arm): an aarch64 cross compiler and user-mode qemu.
arm=()
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || arm+=(gcc-aarch64-linux-gnu)
dpkg -s libc6-dev-arm64-cross >/dev/null 2>&1 || arm+=(libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null 2>&1 || arm+=(qemu-user)
if [ ${#arm[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "install-deps: installing ${arm[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${arm[@]}" >/dev/null
fi
# gguf-py reads back the GGUF files Swiftlet writes (a round-trip test in the suite).
python3 -c "import gguf" >/dev/null 2>&1 || python3 -m pip install -q --disable-pip-version-check gguf
# The official OpenAI client talks to `swiftlet serve` in a server test (Tests/SwiftletServerTests).
python3 -c "import openai" >/dev/null 2>&1 || python3 -m pip install -q --disable-pip-version-check openai
# The server's end-to-end checks (scripts/server-e2e.py): headless Chromium with its WebDriver, and nginx.
web=()
[ -x /usr/bin/chromium ] || web+=(chromium)
[ -x /usr/bin/chromedriver ] || web+=(chromium-driver)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || web+=(nginx)
if [ ${#web[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "install-deps: installing ${web[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${web[@]}" >/dev/null
fi
