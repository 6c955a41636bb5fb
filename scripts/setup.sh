#!/usr/bin/env bash
# One-shot set-up for a fresh Debian/Ubuntu machine (idempotent; fast when done):
#   1. system packages (Tesseract OCR with eng/nld/deu/fra; for tests exiftool, dcmtk, prometheus, curl, fonts), via apt;
#   2. a Python >= 3.12, found on PATH or in pyenv;
#   3. .venv with the locked dependencies (requirements.lock) and scrubgate itself.
# Usage: scripts/setup.sh [--test]   (--test also installs what the test suite needs)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

say() { printf 'scrubgate setup: %s\n' "$*" >&2; }

# --- 1. system packages -------------------------------------------------------------
apt_packages=(tesseract-ocr tesseract-ocr-eng tesseract-ocr-nld tesseract-ocr-deu tesseract-ocr-fra)
# exiftool judges metadata, dcmtk (dcmdump, dcm2pnm) judges DICOM output, prometheus
# (with promtool) scrapes a running gateway and checks the alert rules, nftables/iptables/
# shellcheck/logrotate check the deploy/ files, wireguard-go and wireguard-tools are the
# WireGuard client of the WireGuard-mode network test (userspace: no kernel module),
# c-icap (c-icap-client) and squid-openssl are the ICAP clients of `scrubgate icap`; the fonts
# widen the quality corpus beyond DejaVu.
test_packages=(libimage-exiftool-perl dcmtk prometheus chromium nftables iptables wireguard-go wireguard-tools c-icap squid-openssl shellcheck logrotate curl fonts-dejavu-core fonts-liberation2 fonts-freefont-ttf fonts-urw-base35)
needed=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || needed+=("$pkg")
done
if (( want_test )); then
  for pkg in "${test_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || needed+=("$pkg")
  done
fi
if (( ${#needed[@]} )); then
  if ! command -v apt-get >/dev/null; then
    say "missing system packages: ${needed[*]} -- install them with your package manager"; exit 1
  fi
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { say "need root (or sudo) to install: ${needed[*]}"; exit 1; }
    sudo="sudo"
  fi
  say "installing system packages: ${needed[*]}"
  $sudo apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${needed[@]}" >/dev/null
fi

# --- 2. a Python >= 3.12 ----------------------------------------------------------------
python_ok() { "$@" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
find_python() {
  local c
  if [[ -n "${SCRUBGATE_PYTHON:-}" ]]; then
    python_ok "$SCRUBGATE_PYTHON" && { echo "$SCRUBGATE_PYTHON"; return; }
    say "SCRUBGATE_PYTHON=$SCRUBGATE_PYTHON is not a working Python >= 3.12"; return 1
  fi
  for c in python3.13 python3.12 python3; do
    # pyenv shims exist for inactive versions and fail when run: python_ok weeds them out.
    if command -v "$c" >/dev/null && python_ok "$c"; then command -v "$c"; return; fi
  done
  if command -v pyenv >/dev/null; then
    local root; root=$(pyenv root)
    for c in $(ls -d "$root"/versions/3.1[2-9]* "$root"/versions/3.[2-9][0-9]* 2>/dev/null | sort -rV); do
      if [[ -x "$c/bin/python3" ]] && python_ok "$c/bin/python3"; then echo "$c/bin/python3"; return; fi
    done
  fi
  return 1
}

venv=.venv
if ! [[ -x $venv/bin/python ]] || ! python_ok $venv/bin/python; then
  py=$(find_python) || {
    say "no Python >= 3.12 found (tried python3.13, python3.12, python3 and pyenv's versions)."
    say "install one (e.g. apt-get install python3.12, or pyenv install 3.12) or set SCRUBGATE_PYTHON."
    exit 1
  }
  say "creating $venv with $py ($("$py" --version 2>&1))"
  rm -rf "$venv"
  "$py" -m venv "$venv"
fi

# --- 3. dependencies ----------------------------------------------------------------------
stamp=$venv/.scrubgate-installed
digest=$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)
if [[ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]]; then
  say "installing locked dependencies into $venv"
  $venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.lock
  $venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
  echo "$digest" > "$stamp"
fi
say "ready ($($venv/bin/scrubgate --version))"
