#!/usr/bin/env bash
# Everything measured at once on the first CUDA machine that becomes
# available, within ~10 minutes, without any package registry:
#
#   bash tools/analysis_tools/gpu_check.sh [--device cuda] [--bundle DIR] [--no-install] [--quick]
#
# The machine brings Python 3.12 with torch (CUDA), torchvision, numpy,
# scipy, scikit-learn, opencv, pytest and ninja. Everything else comes from
# the bundle DIR (default gpu_bundle/, made on a CPU machine by
# tools/analysis_tools/prepare_gpu_check.sh and carried with the checkout):
#   1. a venv .venv-gpu/ that sees the machine's packages
#      (--system-site-packages), the bundle's wheels installed offline, mmcv
#      built from its sdist with its ops (CUDA, all cores), pydensecrf2 from
#      source, this project in editable mode;
#   2. tools/analysis_tools/gpu_check.py: the whole-ExCEL-segmentor parity
#      test on the device (fixtures from the bundle or EXCEL_PARITY_DIR),
#      benchmark_train.py (batch 4, 320², fp32 and --amp),
#      benchmark_pseudo_labels.py (ExCEL + CRF, CLIP-ES), the toy ExCEL
#      training, then one summary table (s/iter, images/s, peak memory,
#      parity pass/fail). Logs in work_dirs/gpu_check/.
# --no-install skips step 1 (use the current python, e.g. .venv here);
# --device cpu --quick is the CPU fallback that CI runs (tiny sizes).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
BUNDLE="$ROOT/gpu_bundle"
DEVICE=cuda
INSTALL=1
QUICK=()
OUT=()
while [ $# -gt 0 ]; do
    case "$1" in
        --bundle) BUNDLE="$2"; shift 2 ;;
        --device) DEVICE="$2"; shift 2 ;;
        --no-install) INSTALL=0; shift ;;
        --quick) QUICK=(--quick); shift ;;
        --out) OUT=(--out "$2"); shift 2 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
log() { echo "[gpu_check] $*"; }
START=$SECONDS
if [ "$INSTALL" = 1 ]; then
    [ -d "$BUNDLE/wheels" ] || { echo "no bundle at $BUNDLE: run tools/analysis_tools/prepare_gpu_check.sh on a machine with registry access" >&2; exit 1; }
    PYTHON="${PYTHON:-python3.12}"
    VENV="$ROOT/.venv-gpu"
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv --system-site-packages "$VENV"
    PY="$VENV/bin/python"
    PIP=("$PY" -m pip --disable-pip-version-check -q)
    log "installing $(ls "$BUNDLE/wheels" | wc -l) wheels offline"
    "${PIP[@]}" install --no-index --no-deps "$BUNDLE"/wheels/*.whl
    for s in "$BUNDLE"/src/*.tar.gz; do
        case "$(basename "$s")" in mmcv-*|pydensecrf2-*) ;; *)
            "${PIP[@]}" install --no-index --no-deps --no-build-isolation "$s" ;;
        esac
    done
    if ! "$PY" -c "import mmcv.ops" 2>/dev/null; then
        BUILD="$(mktemp -d)"
        tar xzf "$BUNDLE"/src/mmcv-*.tar.gz -C "$BUILD"
        SRC="$(ls -d "$BUILD"/mmcv-*)"
        # torch >= 2.10 headers need C++20; mmcv 2.1.0 hard-codes C++14/17
        sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"
        log "building mmcv ops ($(nproc) jobs)"
        (cd "$SRC" && MMCV_WITH_OPS=1 FORCE_CUDA="$([ "$DEVICE" = cpu ] && echo 0 || echo 1)" \
            MAX_JOBS="$(nproc)" "${PIP[@]}" install --no-index --no-deps --no-build-isolation .)
    fi
    "$PY" -c "import pydensecrf.densecrf" 2>/dev/null ||
        "${PIP[@]}" install --no-index --no-deps --no-build-isolation "$BUNDLE"/src/pydensecrf2-*.tar.gz
    "${PIP[@]}" install --no-index --no-deps --no-build-isolation -e .
    log "installed in $(( SECONDS - START )) s"
else
    PY="${PY:-$(command -v python)}"
fi
if [ -z "${EXCEL_PARITY_DIR:-}" ] && [ -d "$BUNDLE/parity" ]; then
    export EXCEL_PARITY_DIR="$BUNDLE/parity"
fi
"$PY" tools/analysis_tools/gpu_check.py --device "$DEVICE" --bundle "$BUNDLE" "${QUICK[@]}" "${OUT[@]}"
rc=$?
log "total $(( SECONDS - START )) s"
exit $rc
