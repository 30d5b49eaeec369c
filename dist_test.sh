#!/usr/bin/env bash
# ./dist_test.sh CONFIG CHECKPOINT NPROC [tools/test.py options]
# NPROC processes: GPUs with CUDA, CPU processes (gloo) without.
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT (torchrun's meaning).
if [ $# -lt 3 ]; then
    echo "error: too few arguments; usage: $0 CONFIG CHECKPOINT NPROC [tools/test.py options]" >&2
    exit 2
fi
if [[ $2 =~ ^[0-9]+$ && ! -f $2 && ! $3 =~ ^[0-9]+$ ]]; then
    echo "error: the order is CONFIG CHECKPOINT NPROC, but \"$2\" looks like NPROC and \"$3\" like CHECKPOINT (swapped?)." >&2
    exit 2
fi
exec "$(dirname "$0")/tools/dist_run.sh" "$3" test.py "$1" "$2" "${@:4}"
