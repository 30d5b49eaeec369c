#!/usr/bin/env bash
# tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [tools/train.py
# options]: MMPose's Slurm training launcher (see tools/slurm_run.sh).
if [ $# -lt 4 ]; then
    echo "error: too few arguments; usage: $0 PARTITION JOB_NAME CONFIG WORK_DIR [tools/train.py options]" >&2
    exit 2
fi
exec "$(dirname "$0")/slurm_run.sh" "$1" "$2" train.py "$3" \
    --work-dir="$4" --launcher=slurm "${@:5}"
