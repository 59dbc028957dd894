#!/usr/bin/env bash
# Install sketch2color into .venv (on the first run, and again whenever pyproject.toml changes), then run the
# whole system: the API and a training worker, plus a demo model on the first start. Ctrl-C stops everything.
#
#   ./start.sh                      http://127.0.0.1:8000/ (data in ./data; settings from S2C_* variables)
#   ./start.sh --port 9000 --host 0.0.0.0 --no-demo     any option of `sketch2color up --help`
#   ./start.sh --install-only       only create/update .venv (test.sh does this)
#
# Needs Python 3.11 or 3.12 with venv (Debian/Ubuntu: sudo apt install python3.11-venv); PYTHON=... picks one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

supported() { "$1" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 13))' 2>/dev/null; }

if [ ! -x .venv/bin/python ]; then
    python=""
    for candidate in ${PYTHON:-} python3.11 python3.12 python3; do
        if command -v "$candidate" >/dev/null && supported "$candidate"; then python=$candidate; break; fi
    done
    if [ -z "$python" ]; then
        echo "error: sketch2color needs Python 3.11 or 3.12 (set PYTHON=/path/to/python3.11)" >&2
        exit 1
    fi
    echo "creating .venv with $($python --version)"
    if ! "$python" -m venv .venv; then
        rm -rf .venv
        echo "error: '$python -m venv' failed; on Debian/Ubuntu: sudo apt install python3.11-venv" >&2
        exit 1
    fi
fi
if ! supported .venv/bin/python; then
    echo "error: .venv has $(.venv/bin/python --version 2>&1); sketch2color needs 3.11 or 3.12 (rm -rf .venv)" >&2
    exit 1
fi

# Everything the project and its test suite need, reinstalled only when pyproject.toml or Python changed.
stamp=.venv/.sketch2color-installed
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1) $(.venv/bin/python --version 2>&1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ] || ! .venv/bin/python -c 'import cli.main' 2>/dev/null; then
    echo "installing sketch2color and its dependencies into .venv (the first time takes a few minutes)..."
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --editable ".[test,onnx]"
    echo "$wanted" > "$stamp"
fi

if [ "${1:-}" = "--install-only" ]; then
    exit 0
fi
exec .venv/bin/sketch2color up "$@"
