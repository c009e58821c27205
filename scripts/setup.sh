#!/usr/bin/env bash
# Set up MedViewer on a fresh Debian/Ubuntu machine: Qt's system libraries, a virtualenv in .venv,
# the CPU build of PyTorch (GPU users install their own build first, see README), then the project.
# Usage: bash scripts/setup.sh [--test]     (--test also installs pytest, pytest-qt and hypothesis, and Debian's
#                                            dicom3tools, whose dciodvfy validates the derived DICOM we write)
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
if [ "${1:-}" = "--test" ]; then extras="[test]"; fi

# Libraries the Qt xcb/offscreen platforms load at run time; a bare Debian image lacks some of them.
qt_packages="libegl1 libgl1 libglib2.0-0 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3
  libx11-xcb1 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
  libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxrender1 libxi6"
if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else sudo=""; fi
missing=""
if command -v dpkg >/dev/null 2>&1; then
  for package in $qt_packages; do
    dpkg -s "$package" >/dev/null 2>&1 || missing="$missing $package"
  done
fi
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ] && [ -z "$sudo" ]; then
    echo "setup: please install these system packages first:$missing" >&2; exit 1
  fi
  echo "setup: installing Qt system libraries:$missing"
  $sudo apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
fi

# The derived-DICOM validator test runs David Clunie's dciodvfy and skips without it; tests only, so a machine
# that cannot install it still gets set up.
if [ -n "$extras" ] && ! command -v dciodvfy >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: no apt-get here; install dicom3tools (dciodvfy) yourself or the DICOM validator test skips"
  elif [ "$(id -u)" != 0 ] && [ -z "$sudo" ]; then
    echo "setup: neither root nor sudo; install dicom3tools (dciodvfy) yourself or the DICOM validator test skips"
  else
    echo "setup: installing dicom3tools (dciodvfy, the DICOM validator the tests use)"
    # Where it can be installed, failing to is an error: CI must run the validator, not skip it quietly.
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends dicom3tools
  fi
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  # Debian's own python3 ships venv/ensurepip separately, in python3-venv.
  if ! "$python" -c "import venv, ensurepip" >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing python3-venv"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv
  fi
  "$python" -m venv .venv
fi
# A torch that is already there (a user's CUDA/ROCm build) is kept; otherwise the CPU build, so that
# pip does not fetch several GB of CUDA packages.
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  .venv/bin/pip install --quiet "torch==2.13.0"
fi
.venv/bin/pip install --quiet -e ".$extras"
echo "setup: done ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
