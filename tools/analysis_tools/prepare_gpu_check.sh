#!/usr/bin/env bash
# Prepare, on a CPU machine WITH package-registry access, the bundle that
# tools/analysis_tools/gpu_check.sh installs from on a CUDA machine that has
# none (it brings Python 3.12 + torch, torchvision, numpy, scipy,
# scikit-learn, opencv, pytest and ninja of its own):
#
#   bash tools/analysis_tools/prepare_gpu_check.sh [--out DIR] [--list]
#
# DIR (default gpu_bundle/ in the repository, git-ignored) receives
#   wheels/   py3.12 wheels of every other package of this project's
#             environment (versions as installed in .venv here), Cython;
#   src/      the mmcv sdist (its ops are built on the GPU machine with all
#             cores) and the pydensecrf2 sdist;
#   parity/   the ExCEL fixtures of the whole-segmentor parity test (run on
#             the GPU), when the bundle stays within MAX_MB (default 60) with
#             them; else left out and said so (MAX_MB=120 includes them);
#   MANIFEST  what is in it, with sizes.
# --list prints the package list and exits (nothing downloaded).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="$ROOT/gpu_bundle"
LIST_ONLY=0
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT="$2"; shift 2 ;;
        --list) LIST_ONLY=1; shift ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
PY="${PY:-$ROOT/.venv/bin/python}"
MAX_MB="${MAX_MB:-60}"
PARITY="${EXCEL_PARITY_DIR:-$(cd "$ROOT/.." && pwd)/shared/parity}"
# preinstalled on the GPU machine (and their own dependencies), or built
# there from src/, or this project itself
SKIP_RE='^(torch|torchvision|triton|numpy|scipy|scikit-learn|joblib|threadpoolctl|opencv-python|opencv-python-headless|pytest|pluggy|iniconfig|packaging|pygments|ninja|pip|setuptools|wheel|filelock|fsspec|jinja2|markupsafe|mpmath|networkx|sympy|typing-extensions|pillow|cuda-.*|nvidia-.*|mmcv|pydensecrf2|mmseg-excel)$'
PKGS=()
while IFS= read -r line; do
    name="${line%%==*}"
    norm="$(echo "$name" | tr 'A-Z_' 'a-z-')"
    if ! [[ "$norm" =~ $SKIP_RE ]]; then PKGS+=("$line"); fi
done < <("$PY" -m pip list --format=freeze --disable-pip-version-check 2>/dev/null)
MMCV="$("$PY" -c 'import mmcv; print(mmcv.__version__)')"
if [ "$LIST_ONLY" = 1 ]; then
    printf '%s\n' "${PKGS[@]}"
    echo "src: mmcv==$MMCV pydensecrf2==1.1"
    exit 0
fi
mkdir -p "$OUT/wheels" "$OUT/src"
PIP=("$PY" -m pip --disable-pip-version-check -q download --no-deps -d)
for p in "${PKGS[@]}"; do
    "${PIP[@]}" "$OUT/wheels" --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform any "$p" 2>/dev/null ||
        "${PIP[@]}" "$OUT/src" --no-binary=:all: "$p"
done
"${PIP[@]}" "$OUT/src" --no-binary=:all: "mmcv==$MMCV" "pydensecrf2==1.1"
mb() { du -sm "$@" | awk '{s+=$1} END {print s}'; }
SEG_FIXTURES=(inputs.pt text.pt encoder.pt step_before_lvc.pt
              step_after_lvc.pt decoder_state_dict.pt mini_clip_openai.pt
              attr_bank.pt)
if [ -d "$PARITY" ]; then
    need=$(cd "$PARITY" && mb "${SEG_FIXTURES[@]}")
    have=$(mb "$OUT/wheels" "$OUT/src")
    if [ $(( need + have )) -le "$MAX_MB" ]; then
        mkdir -p "$OUT/parity"
        (cd "$PARITY" && cp "${SEG_FIXTURES[@]}" "$OUT/parity/")
    else
        echo "[prepare_gpu_check] parity fixtures left out: $need MB + $have MB > MAX_MB=$MAX_MB (MAX_MB=$(( need + have + 1 )) includes them)"
    fi
fi
{
    echo "# gpu_check bundle, prepared $(date -u) from $PY"
    (cd "$OUT" && find . -type f ! -name MANIFEST -printf '%s %p\n' | sort -k2)
} > "$OUT/MANIFEST"
echo "[prepare_gpu_check] $OUT: $(mb "$OUT") MB ($(ls "$OUT/wheels" | wc -l) wheels, $(ls "$OUT/src" | wc -l) sources$( [ -d "$OUT/parity" ] && echo ", parity fixtures"))"
