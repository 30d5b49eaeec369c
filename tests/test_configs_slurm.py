"""tools/slurm_train.sh and tools/slurm_test.sh take MMPose's arguments and
variables and hand srun the command MMPose's launchers give it. No Slurm
here: a fake ``srun`` first on PATH records its arguments and exits with a
status of our choice."""
import os
from pathlib import Path

import pytest

from conftest import REPO, run_tool

FAKE_SRUN = """#!/usr/bin/env bash
printf '%s\\0' "$@" > "$SRUN_RECORD"
exit "${SRUN_STATUS:-0}"
"""


def srun_arguments(tmp_path: Path, args: list, **env) -> tuple:
    """(process, srun's arguments or None when srun was not run)."""
    srun = tmp_path / 'bin' / 'srun'
    srun.parent.mkdir(exist_ok=True)
    srun.write_text(FAKE_SRUN)
    srun.chmod(0o755)
    record = tmp_path / 'srun_args'
    record.unlink(missing_ok=True)
    env = dict(
        env,
        PATH=f'{srun.parent}{os.pathsep}{os.environ["PATH"]}',
        SRUN_RECORD=str(record),
        PYTHON='python3')
    for name in ('GPUS', 'GPUS_PER_NODE', 'CPUS_PER_TASK', 'SRUN_ARGS'):
        env.setdefault(name, os.environ.get(name, ''))
    result = run_tool(args, timeout=60, env=env)
    recorded = (
        record.read_text().split('\0')[:-1] if record.exists() else None)
    return result, recorded


def srun_options(partition, job, tasks=8, per_node=8, cpus=5, extra=()):
    return [
        '-p', partition, f'--job-name={job}', f'--gres=gpu:{per_node}',
        f'--ntasks={tasks}', f'--ntasks-per-node={per_node}',
        f'--cpus-per-task={cpus}', '--kill-on-bad-exit=1', *extra
    ]


@pytest.mark.slow
def test_train_defaults(tmp_path):
    # Empty variables count as unset, as ${GPUS:-8} in MMPose's script.
    result, recorded = srun_arguments(
        tmp_path,
        ['tools/slurm_train.sh', 'gpu', 'tp', 'my config.py', 'work_dirs/tp'])
    assert result.returncode == 0, result.stderr
    assert recorded == srun_options('gpu', 'tp') + [
        'python3', '-u',
        str(REPO / 'tools/train.py'), 'my config.py',
        '--work-dir=work_dirs/tp', '--launcher=slurm'
    ]


@pytest.mark.slow
def test_train_variables_and_options(tmp_path):
    result, recorded = srun_arguments(
        tmp_path, [
            'tools/slurm_train.sh', 'p1', 'job', 'c.py', 'w', '--resume',
            '--cfg-options', 'train_cfg.max_epochs=2'
        ],
        GPUS='16',
        GPUS_PER_NODE='4',
        CPUS_PER_TASK='3',
        SRUN_ARGS='--quotatype=auto --mem=0')
    assert result.returncode == 0, result.stderr
    assert recorded == srun_options(
        'p1', 'job', 16, 4, 3, ['--quotatype=auto', '--mem=0']) + [
            'python3', '-u',
            str(REPO / 'tools/train.py'), 'c.py', '--work-dir=w',
            '--launcher=slurm', '--resume', '--cfg-options',
            'train_cfg.max_epochs=2'
        ]


@pytest.mark.slow
def test_test_passes_the_checkpoint_and_srun_status(tmp_path):
    result, recorded = srun_arguments(
        tmp_path, [
            'tools/slurm_test.sh', 'p', 'j', 'c.py', 'ckpt.pth', '--work-dir',
            'w'
        ],
        GPUS='2',
        SRUN_STATUS='3')
    # srun's status is the launcher's: the job step failed.
    assert result.returncode == 3
    assert recorded == srun_options(
        'p', 'j', tasks=2) + [
            'python3', '-u',
            str(REPO / 'tools/test.py'), 'c.py', 'ckpt.pth',
            '--launcher=slurm', '--work-dir', 'w'
        ]


@pytest.mark.slow
@pytest.mark.parametrize('script', ['slurm_train.sh', 'slurm_test.sh'])
def test_too_few_arguments(tmp_path, script):
    result, recorded = srun_arguments(
        tmp_path, [f'tools/{script}', 'partition', 'job', 'config.py'])
    assert result.returncode == 2
    assert recorded is None
    line, = result.stderr.splitlines()
    assert line.startswith('error: too few arguments; usage: ')
    assert ('WORK_DIR' if 'train' in script else 'CHECKPOINT') in line
