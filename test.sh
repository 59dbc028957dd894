#!/usr/bin/env bash
# Run the whole test suite, as CI does (.ci/run calls this script). Arguments go to pytest:
#   ./test.sh                       lint (ruff, mypy), then everything under tests/, two test files at a time
#   ./test.sh tests/cli -x          one folder, stop at the first failure (no lint, one test at a time)
# On a fresh machine it first installs what the tests need: Debian's chromium, docker-compose, redis-server,
# imagemagick (an independent reader of the layered files) and nodejs with npm (the JS client's type checks)
# (through apt-get, as root or with sudo), the project with its test extra in .venv, and the JS client's pinned
# tools (npm ci in clients/js, from its package-lock.json). The tests start their
# own Redis on a free port; they never touch a server they did not start.
# Exits non-zero when a test fails, and also when no test ran at all (nothing collected, or all skipped).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

# SKIP_INSTALL=1 skips both installs (when the machine and .venv are known to be ready).
if [ -z "${SKIP_INSTALL:-}" ]; then
    need=()
    command -v chromium >/dev/null || need+=(chromium)
    command -v docker-compose >/dev/null || need+=(docker-compose)
    command -v redis-server >/dev/null || need+=(redis-server)
    command -v identify >/dev/null || need+=(imagemagick)
    command -v node >/dev/null || need+=(nodejs)
    command -v npm >/dev/null || need+=(npm)
    if [ ${#need[@]} -gt 0 ]; then
        if [ "$(id -u)" -eq 0 ]; then sudo=""
        elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo"
        else
            echo "error: the tests need Debian packages: ${need[*]}; install them with:" >&2
            echo "    sudo apt-get install -y --no-install-recommends ${need[*]}" >&2
            exit 1
        fi
        echo "installing Debian packages the tests need: ${need[*]}"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    fi
    ./start.sh --install-only
    # openapi-typescript and tsc at the versions package-lock.json pins; the npm cache serves them offline.
    (cd clients/js && npm ci --prefer-offline --no-audit --no-fund --loglevel=error)
fi

if [ $# -eq 0 ]; then
    packages=(app worker model contracts storage cli tests bench)
    .venv/bin/ruff check "${packages[@]}"
    .venv/bin/ruff format --check "${packages[@]}"
    .venv/bin/mypy  # the packages listed in pyproject.toml, not the tests
    # Most tests wait on servers, workers and browsers, so two pytest-xdist workers about halve the wall time on
    # two cores. --dist loadfile keeps each file in one worker: a file's module fixtures (servers, trained
    # generators) start once. TEST_WORKERS=1 runs it in one process.
    workers=${TEST_WORKERS:-2}
    if [ "$workers" -gt 1 ]; then set -- -n "$workers" --dist loadfile tests; else set -- tests; fi
fi
report_dir=$(mktemp -d)
trap 'rm -rf "$report_dir"' EXIT

status=0
.venv/bin/python -m pytest --durations=25 --junitxml="$report_dir/junit.xml" "$@" || status=$?

if [ "$status" -eq 0 ]; then
    ran=$(.venv/bin/python - "$report_dir/junit.xml" <<'PYTHON'
import sys
import xml.etree.ElementTree as ElementTree

cases = ElementTree.parse(sys.argv[1]).getroot().iter("testcase")
print(sum(1 for case in cases if case.find("skipped") is None))
PYTHON
)
    if [ "$ran" -eq 0 ]; then
        echo "error: no test ran (none collected, or all skipped)" >&2
        status=5
    fi
fi
exit "$status"
