#!/usr/bin/env bash
# The Python client's tests (clients/python/tests, stdlib unittest) against a built agentd:
#   scripts/test-python-client.sh [AGENTD_BINARY]     (default: the debug build, .build/debug/agentd)
# Installs the package with `pip install ./clients/python` into a fresh venv and runs the tests with
# that venv's Python, so what is tested is what pip installs.
set -euo pipefail
cd "$(dirname "$0")/.."
binary="${1:-.build/debug/agentd}"
[ -x "$binary" ] || { echo "no agentd binary at $binary: build it first (swift build)" >&2; exit 1; }
venv="${XDG_CACHE_HOME:-$HOME/.cache}/agentd/py-client"
python3 -m venv --clear "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check ./clients/python
binary="$(realpath "$binary")"
# The tests import the installed package, not clients/python/src.
"$venv/bin/python" -c 'import agentd_client, sys; "site-packages" in agentd_client.__file__ or sys.exit("not the installed package: " + agentd_client.__file__)'
AGENTD_BINARY="$binary" "$venv/bin/python" -m unittest discover -s clients/python/tests -v
