#!/usr/bin/env bash
# tools/dist_run.sh NPROC SCRIPT ARGS...: run tools/SCRIPT under torchrun
# (tools/torchrun.py), for dist_train.sh and dist_test.sh; gloo without CUDA.
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT as for torchrun. PYTHON
# picks the interpreter (default: the repo's .venv if present, else python).
set -euo pipefail
NPROC=$1
SCRIPT=$2
if ! [[ $NPROC =~ ^[1-9][0-9]*$ ]]; then
    echo "error: NPROC must be a number of processes per machine, 1 or more; got \"$NPROC\"." >&2
    exit 2
fi
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEFAULT_PYTHON="$ROOT/.venv/bin/python"
[ -x "$DEFAULT_PYTHON" ] || DEFAULT_PYTHON=python
PYTHON=${PYTHON:-$DEFAULT_PYTHON}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# GPUs this PyTorch cannot use stop the launch here with one line, not in
# each of NPROC processes (sspose_mm.env.check_gpus_usable, docs/gpu.md).
if compgen -G '/dev/nvidia[0-9]*' > /dev/null || command -v nvidia-smi \
        > /dev/null; then
    "$PYTHON" -c 'from sspose_mm.env import check_gpus_usable
from sspose_mm.cli import run_cli
run_cli(check_gpus_usable)'
fi
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} \
exec "$PYTHON" "$ROOT/tools/torchrun.py" \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
    --nproc_per_node="$NPROC" "$ROOT/tools/$SCRIPT" "${@:3}" --launcher pytorch
