#!/usr/bin/env bash
# Set up rowmix on a fresh Debian machine: system simulator, .venv at the repository root, the package
# (editable) with its test tools. Safe to run twice: every step checks before it acts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

apt_install() {
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$@"
}

if ! command -v iverilog >/dev/null 2>&1; then
    echo "setup: installing Icarus Verilog (Debian package iverilog)"
    apt_install iverilog
fi

PYTHON="${PYTHON:-python3.11}"
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $PYTHON"
    "$PYTHON" -m venv .venv
fi

# torch first and exactly pinned: an unpinned resolve would fetch a multi-GB CUDA build.
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[test]"
.venv/bin/rowmix --version
