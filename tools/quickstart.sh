#!/usr/bin/env bash
# README command 1: set everything up, then run the main job on the embedded
# default, the Toy World: render it (seeded), train ExCEL with the shipped toy
# CLIP (configs/toy_world/excel_toy-clip_1xb8-1k_toy-world-96x96.py) and
# print its test-split mIoU (single scale, then multi-scale + flip + CRF).
#
#   bash tools/quickstart.sh            # setup + data + train + test
#   SKIP_SETUP=1 bash tools/quickstart.sh
#
# For a short run (the test suite does this): DATA=DIR (another world
# folder), DATA_ARGS="--num-train 8 ..." (make_dataset.py options) and
# CFG_OPTIONS="train_cfg.max_iters=2 ..." (extra --cfg-options).
#
# An interrupted run resumes from its last checkpoint (--resume).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ "${SKIP_SETUP:-0}" != "1" ]; then
    bash tools/setup_env.sh
fi
PY="${VENV:-$ROOT/.venv}/bin/python"
CONFIG=configs/toy_world/excel_toy-clip_1xb8-1k_toy-world-96x96.py
WORK_DIR="${WORK_DIR:-work_dirs/toy_world/excel}"
DATA="${DATA:-data/toy_world}"
log() { echo "[quickstart] $*"; }
# shellcheck disable=SC2206
OPTS=(${CFG_OPTIONS:-})
if [ "$DATA" != "data/toy_world" ]; then
    for split in train val test; do
        OPTS+=("${split}_dataloader.dataset.data_root=$DATA")
    done
fi
CFG_ARGS=()
if [ "${#OPTS[@]}" -gt 0 ]; then CFG_ARGS=(--cfg-options "${OPTS[@]}"); fi

if [ ! -f "$DATA/meta.json" ]; then
    log "rendering the Toy World into $DATA (seed 0; test split seed 1000)"
    # shellcheck disable=SC2086
    "$PY" tools/toy_world/make_dataset.py --out "$DATA" --seed 0 ${DATA_ARGS:-}
fi
log "training ExCEL on the Toy World ($CONFIG)"
start=$(date +%s)
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK_DIR" --resume "${CFG_ARGS[@]}"
log "training wall time: $(( $(date +%s) - start )) s"
CKPT="$(cat "$WORK_DIR/last_checkpoint")"
log "test split, single scale ($CKPT)"
"$PY" tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK_DIR/test" "${CFG_ARGS[@]}"
log "test split, multi-scale + flip + dense CRF"
"$PY" tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK_DIR/test_tta" --tta \
    "${CFG_ARGS[@]}"
log "done: logs, checkpoints and pictures in $WORK_DIR"
