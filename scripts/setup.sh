#!/usr/bin/env bash
# Install pellucid into ./.venv, from a fresh machine.
#   bash scripts/setup.sh        the package and its runtime dependencies
#   bash scripts/setup.sh test   the same plus the test tools
# torch is pinned to 2.13.0: that is the CPU build (an unpinned torch pulls a CUDA build of
# several GB). The system graphviz `dot`, which draws the tree in the report, is installed
# with apt-get where it is missing and we are root; otherwise the report says it is missing
# and shows the rules only. With `test`, Debian's chromium is installed the same way: the
# browser tests drive it with Playwright (never `playwright install`: nothing is downloaded).
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
case "${1:-}" in
  "") ;;
  test) extras="[test]" ;;
  *) echo "usage: bash scripts/setup.sh [test]" >&2; exit 2 ;;
esac

# System packages: graphviz's `dot` draws the tree in the report; Chromium (test extras only)
# runs the report in a real browser and prints it to PDF, and poppler-utils reads the PDF back.
# One apt-get update for all.
apt_pkgs=()
command -v dot >/dev/null 2>&1 || apt_pkgs+=(graphviz)
if [ -n "$extras" ] && ! command -v chromium >/dev/null 2>&1; then apt_pkgs+=(chromium); fi
# pdftotext reads the printed report back in the PDF tests.
if [ -n "$extras" ] && ! command -v pdftotext >/dev/null 2>&1; then apt_pkgs+=(poppler-utils); fi
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${apt_pkgs[*]} with apt-get" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_pkgs[@]}" >/dev/null
  else
    for p in "${apt_pkgs[@]}"; do
      case "$p" in
        graphviz) echo "note: graphviz 'dot' not found and cannot install it here; reports will show rules without the tree drawing" >&2 ;;
        chromium) echo "note: chromium not found and cannot install it here; the browser and PDF tests will skip (and fail where CI is set)" >&2 ;;
        poppler-utils) echo "note: pdftotext not found and cannot install it here; the PDF text tests will skip (and fail where CI is set)" >&2 ;;
      esac
    done
  fi
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0" -e ".${extras}"
