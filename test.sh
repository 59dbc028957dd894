#!/usr/bin/env bash
# Run the whole test suite, as CI does (.ci/run calls this script). Arguments go to pytest:
#   ./test.sh                       everything under tests/
#   ./test.sh tests/deploy -x       one folder, stop at the first failure
# Exits non-zero when a test fails, and also when no test ran at all (nothing collected, or all skipped).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

# SKIP_INSTALL=1 skips the install check (when .venv is known to be up to date).
if [ -z "${SKIP_INSTALL:-}" ]; then
    ./start.sh --install-only
fi

if [ $# -eq 0 ]; then
    set -- tests
fi
report_dir=$(mktemp -d)
trap 'rm -rf "$report_dir"' EXIT

status=0
.venv/bin/python -m pytest --junitxml="$report_dir/junit.xml" "$@" || status=$?

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
