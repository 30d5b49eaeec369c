#!/usr/bin/env bash
# tools/slurm_run.sh PARTITION JOB_NAME SCRIPT ARGS...: tools/SCRIPT as a
# Slurm job step, one task per GPU, for slurm_train.sh and slurm_test.sh.
# MMPose's variables: GPUS (tasks, default 8), GPUS_PER_NODE (8),
# CPUS_PER_TASK (5), SRUN_ARGS; PYTHON as in tools/dist_run.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEFAULT_PYTHON="$ROOT/.venv/bin/python"
[ -x "$DEFAULT_PYTHON" ] || DEFAULT_PYTHON=python
PYTHON=${PYTHON:-$DEFAULT_PYTHON}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
# SRUN_ARGS is split into words: it may hold several options.
# shellcheck disable=SC2086
exec srun -p "$1" \
    --job-name="$2" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="${GPUS:-8}" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="${CPUS_PER_TASK:-5}" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS:-} \
    "$PYTHON" -u "$ROOT/tools/$3" "${@:4}"
