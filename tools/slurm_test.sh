#!/usr/bin/env bash
# tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [tools/test.py
# options]: MMPose's Slurm testing launcher (see tools/slurm_run.sh).
if [ $# -lt 4 ]; then
    echo "error: too few arguments; usage: $0 PARTITION JOB_NAME CONFIG CHECKPOINT [tools/test.py options]" >&2
    exit 2
fi
exec "$(dirname "$0")/slurm_run.sh" "$1" "$2" test.py "$3" "$4" \
    --launcher=slurm "${@:5}"
