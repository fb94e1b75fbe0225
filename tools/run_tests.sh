#!/usr/bin/env bash
# The test command of the README: every test, the slow and parity ones included.
#   EXCEL_PARITY_DIR  folder of the official golden outputs (default ../shared/parity)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export EXCEL_PARITY_DIR="${EXCEL_PARITY_DIR:-$(cd .. && pwd)/shared/parity}"
exec .venv/bin/python -m pytest -ra -q "$@"
