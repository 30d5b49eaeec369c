#!/usr/bin/env bash
# ./dist_train.sh CONFIG NPROC [tools/train.py options]
# NPROC processes: GPUs with CUDA, CPU processes (gloo) without.
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT (torchrun's meaning).
if [ $# -lt 2 ]; then
    echo "error: too few arguments; usage: $0 CONFIG NPROC [tools/train.py options]" >&2
    exit 2
fi
if [[ $1 =~ ^[0-9]+$ && ! -f $1 && ! $2 =~ ^[0-9]+$ ]]; then
    echo "error: the order is CONFIG NPROC, but \"$1\" looks like NPROC and \"$2\" like CONFIG (swapped?)." >&2
    exit 2
fi
exec "$(dirname "$0")/tools/dist_run.sh" "$2" train.py "$1" "${@:3}"
