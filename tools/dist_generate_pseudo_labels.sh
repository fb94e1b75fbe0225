#!/usr/bin/env bash
# Sharded pseudo-label export with torchrun (one shard per process; gloo on
# CPU, NCCL with GPUs): bash tools/dist_generate_pseudo_labels.sh CONFIG N --out-dir DIR [args]
CONFIG=$1
NPROC=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
torchrun \
    --nnodes=$NNODES \
    --node_rank=$NODE_RANK \
    --master_addr=$MASTER_ADDR \
    --nproc_per_node=$NPROC \
    --master_port=$PORT \
    "$(dirname "$0")/generate_pseudo_labels.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}"
