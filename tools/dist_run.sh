#!/usr/bin/env bash
# tools/dist_run.sh NPROC SCRIPT ARGS...: run tools/SCRIPT under torchrun.
# Used by dist_train.sh and dist_test.sh. One process per GPU with CUDA, per
# CPU process without (gloo is chosen automatically). Multi-node: NNODES,
# NODE_RANK, MASTER_ADDR, PORT as for torchrun. PYTHON picks the
# interpreter (default: the repo's .venv if present, else python).
# tools/torchrun.py is torchrun ending with the failed process's own error.
set -euo pipefail
NPROC=$1
SCRIPT=$2
if ! [[ $NPROC =~ ^[1-9][0-9]*$ ]]; then
    echo "error: NPROC must be a number of processes per machine, 1 or more; got \"$NPROC\"." >&2
    exit 2
fi
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "${PYTHON:-}" ]; then
    PYTHON=python
    [ -x "$ROOT/.venv/bin/python" ] && PYTHON="$ROOT/.venv/bin/python"
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# NVIDIA GPUs that this PyTorch cannot use (driver too old for its CUDA) stop
# the launch here with one line, instead of NPROC processes training on the
# CPU or each failing (sspose_mm.env.check_gpus_usable, docs/gpu.md).
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
