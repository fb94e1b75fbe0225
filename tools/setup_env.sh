#!/usr/bin/env bash
# One-command setup of mmseg-excel on a fresh Linux machine (Python 3.11).
#
#   bash tools/setup_env.sh            # creates .venv/ and installs everything
#
# What it does:
#   1. creates a virtual environment at .venv/ in the repository root;
#   2. installs torch / torchvision (TORCH_VERSION / TORCHVISION_VERSION);
#   3. builds full mmcv 2.1.0 (with mmcv.ops) from its sdist ONCE and caches
#      the wheel in $MMSEG_EXCEL_CACHE (default ~/.cache/mmseg-excel), outside
#      the repository; later runs install the cached wheel in seconds;
#   4. installs mmsegmentation, mmengine, mmpretrain, open_clip_torch,
#      pydensecrf2 and the test requirements, then this plugin in editable mode.
#
# Environment variables:
#   PYTHON               interpreter used to create the venv   (python3.11)
#   VENV                 venv directory                         (.venv)
#   MMSEG_EXCEL_CACHE    wheel cache directory                  (~/.cache/mmseg-excel)
#   TORCH_VERSION        torch version                          (2.14.1)
#   TORCHVISION_VERSION  torchvision version                    (0.29.1)
#   MMCV_VERSION         mmcv version built from source         (2.1.0)
#   MAX_JOBS             parallel compile jobs for mmcv         (nproc)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3.11}"
VENV="${VENV:-$ROOT/.venv}"
CACHE="${MMSEG_EXCEL_CACHE:-$HOME/.cache/mmseg-excel}"
TORCH_VERSION="${TORCH_VERSION:-2.14.1}"
TORCHVISION_VERSION="${TORCHVISION_VERSION:-0.29.1}"
MMCV_VERSION="${MMCV_VERSION:-2.1.0}"
export MAX_JOBS="${MAX_JOBS:-$(nproc)}"
mkdir -p "$CACHE/wheels"

log() { echo "[setup_env] $*"; }
START=$SECONDS
CACHED=()   # what this run reused instead of installing or building

if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtual environment at $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check -q)

# pip prints one warning per missing local index entry; keep the log readable.
# It also reports that torch declares setuptools>=77 while we pin <70 (see the
# pin below): expected, explained once at the end, so filtered here.
quiet() {
    "$@" 2> >(grep -v -e "is ignored: it is neither a file nor a directory" \
        -e "^ERROR: pip's dependency resolver does not currently take" \
        -e "requires setuptools>=.*but you have setuptools" >&2)
}

if ! "$PY" -c "import torch, torchvision; assert torch.__version__.split('+')[0] == '$TORCH_VERSION'" 2>/dev/null; then
    log "installing torch==$TORCH_VERSION torchvision==$TORCHVISION_VERSION"
    quiet "${PIP[@]}" install "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
else
    CACHED+=("torch $TORCH_VERSION (already in $VENV)")
fi
# mmcv's setup.py imports pkg_resources: setuptools must stay below 70.
quiet "${PIP[@]}" install "setuptools<70" wheel ninja

TORCH_TAG="$("$PY" -c "import torch; print(torch.__version__.split('+')[0])")"
PYTAG="$("$PY" -c "import sys; print(f'cp{sys.version_info[0]}{sys.version_info[1]}')")"
WHEEL_DIR="$CACHE/wheels/mmcv-$MMCV_VERSION-torch$TORCH_TAG-$PYTAG"
if ! "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" 2>/dev/null; then
    if ls "$WHEEL_DIR"/mmcv-*.whl >/dev/null 2>&1; then
        CACHED+=("mmcv $MMCV_VERSION wheel ($WHEEL_DIR)")
    else
        BUILD_START=$SECONDS
        log "building mmcv==$MMCV_VERSION with ops from source (about 25 min on 2 cores; cached in $WHEEL_DIR)"
        BUILD="$(mktemp -d)"
        quiet "${PIP[@]}" download --no-deps --no-build-isolation --no-binary :all: \
            "mmcv==$MMCV_VERSION" -d "$BUILD"
        tar xzf "$BUILD"/mmcv-"$MMCV_VERSION".tar.gz -C "$BUILD"
        # torch >= 2.10 headers need C++20; mmcv 2.1.0 hard-codes C++14/17.
        sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' \
            "$BUILD/mmcv-$MMCV_VERSION/setup.py"
        mkdir -p "$WHEEL_DIR.partial"
        (cd "$BUILD/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 FORCE_CUDA="${FORCE_CUDA:-0}" \
            quiet "${PIP[@]}" wheel --no-deps --no-build-isolation . -w "$WHEEL_DIR.partial")
        rm -rf "$WHEEL_DIR" && mv "$WHEEL_DIR.partial" "$WHEEL_DIR"
        rm -rf "$BUILD"
        log "mmcv built in $(( SECONDS - BUILD_START )) s and cached in $WHEEL_DIR"
    fi
    log "installing cached mmcv wheel from $WHEEL_DIR"
    quiet "${PIP[@]}" install --no-deps "$WHEEL_DIR"/mmcv-*.whl
else
    CACHED+=("mmcv $MMCV_VERSION with ops (already in $VENV)")
fi

log "installing runtime, optional and test requirements"
quiet "${PIP[@]}" install -r requirements/runtime.txt -r requirements/tests.txt
if ! "$PY" -c "import pydensecrf.densecrf" 2>/dev/null; then
    quiet "${PIP[@]}" install cython
    quiet "${PIP[@]}" install --no-build-isolation -r requirements/optional.txt
fi
# torch pulls setuptools >= 77, which no longer ships pkg_resources; mmengine
# 0.10.7 needs pkg_resources to resolve `mmseg::` configs. Pin it back last.
quiet "${PIP[@]}" install --no-deps "setuptools<70"
log "installing mmseg-excel in editable mode"
quiet "${PIP[@]}" install --no-deps --no-build-isolation -e .
"$PY" -c "import mmseg_excel, mmseg.models, mmcv.ops, open_clip, pydensecrf.densecrf; print('[setup_env] ok: mmseg_excel', mmseg_excel.__version__)"
log "note: setuptools is pinned <70 on purpose (mmengine needs pkg_resources); pip's 'torch requires setuptools>=77' complaint is expected and harmless"
if [ "${#CACHED[@]}" -gt 0 ]; then
    for c in "${CACHED[@]}"; do log "reused: $c"; done
fi
log "total time $(( SECONDS - START )) s"
