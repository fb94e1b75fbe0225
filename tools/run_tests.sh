#!/usr/bin/env bash
# The test command of the README: every test, the slow and parity ones included.
#   EXCEL_PARITY_DIR      folder of the official golden outputs (default
#                         ../shared/parity); when it is absent the parity tests
#                         are deselected and pytest says so in one loud line
#   EXCEL_REQUIRE_PARITY  1: missing fixtures or a parity test not run fail
#                         (set by .ci/run)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export EXCEL_PARITY_DIR="${EXCEL_PARITY_DIR:-$(cd .. && pwd)/shared/parity}"
exec .venv/bin/python -m pytest -ra -q "$@"
