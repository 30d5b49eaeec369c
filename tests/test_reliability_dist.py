"""Distributed runs: one process and two simulated nodes compute the same
thing; a rank that dies ends the job with a clear message instead of a hang.

Two nodes are simulated on this machine as the README describes for real
ones: two launches of ./dist_train.sh with NNODES=2, NODE_RANK=0/1 and
MASTER_ADDR=127.0.0.1, one CPU process (gloo) each.
"""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from conftest import (COCO, QUICKSTART_CONFIG, as_cli, coco_excerpt_options,
                      run_tool, started, tool_env)
from test_reliability_resume import (ITERS, check_ok, tiny_options,
                                     write_tiny_config)
from test_runner import free_port

GLOBAL_BATCH = 4
# Every layer that normalises over the batch is frozen or left out: BN runs
# per process (SyncBN needs CUDA), so with it 1 and 2 processes differ by
# design (measured: by a third of the weights' movement after 6 steps with 2
# crops per process). The backbone's BN is frozen (norm_eval, in options())
# and the head's deconvolution with its BN is left out: the head predicts at
# the backbone's stride 8 (8x6 heatmaps for 64x48 crops).
# EPE (mean keypoint distance in pixels), which moves with every weight
# change, is evaluated beside COCO AP, which is ~0 after 6 steps.
EQUIVALENCE_CONFIG = f"""
model = dict(head=dict(deconv_out_channels=None, deconv_kernel_sizes=None))
test_evaluator = [
    dict(type='CocoMetric', ann_file={str(COCO / 'test_coco.json')!r}),
    dict(type='EPE')]
"""


def node_vars(node_rank: int, port: str) -> dict:
    return dict(
        NNODES='2',
        NODE_RANK=str(node_rank),
        MASTER_ADDR='127.0.0.1',
        PORT=port)


def node_env(node_rank: int, port: str) -> dict:
    """The environment run_tool gives, for a launch in the background."""
    return tool_env(node_vars(node_rank, port))


def run_on_two_nodes(command: list, log: Path) -> str:
    """Run ``command`` (a ./dist_*.sh line) as node 1 and node 0."""
    port = free_port()
    with open(log, 'w') as node1_log, started(  # a file: a full pipe blocks
            command,
            env=node_env(1, port),
            stdout=node1_log,
            stderr=subprocess.STDOUT) as node1:
        node0 = run_tool(command, env=node_vars(0, port), timeout=300)
        node1.wait(timeout=120)
    assert node1.returncode == 0, log.read_text()[-3000:]
    return check_ok(node0)


def options(world_size: int) -> dict:
    # Same global batch; backbone BN frozen and no dropout, so that both
    # runs do the same arithmetic: per-process BN statistics and dropout
    # masks would make them differ by design, not by a bug.
    chosen = tiny_options(
        **{
            'train_dataloader.batch_size': GLOBAL_BATCH // world_size,
            'train_dataloader.sampler.seed': 0,
            'model.backbone.norm_eval': True,
            'model.neck.dropout': 0.0,
            'default_hooks.checkpoint.interval': 1,
            # iter_1.pth (the movement's start) to iter_6.pth are compared.
            'default_hooks.checkpoint.max_keep_ckpts': ITERS,
            'env_cfg.dist_cfg.timeout': 120,  # a failure ends, never hangs
        })
    del chosen['test_evaluator.ann_file']  # EQUIVALENCE_CONFIG names it
    return chosen


def weights(path: Path) -> torch.Tensor:
    state = torch.load(path, weights_only=True)['state_dict']
    return torch.cat([
        v.flatten().double() for k, v in state.items()
        if v.is_floating_point() and 'running' not in k
    ])


@pytest.mark.slow
def test_two_nodes_train_and_test_like_one_process(tmp_path):
    config = write_tiny_config(
        tmp_path, augment=False, heatmap_size=(6, 8), extra=EQUIVALENCE_CONFIG)
    one, two = tmp_path / 'one_process', tmp_path / 'two_nodes'
    train = ['--deterministic', '--no-validate']
    check_ok(
        run_tool(['tools/train.py', config, '--work-dir',
                  str(one)] + train + as_cli(options(1))))
    log = run_on_two_nodes(
        ['./dist_train.sh', config, '1', '--work-dir',
         str(two)] + train + as_cli(options(2)), tmp_path / 'node1_train.log')
    assert 'Distributed training: True' in log

    # Six Adam steps moved the weights; the two runs differ only by float
    # summation order (gradients averaged over 2 processes instead of summed
    # in one batch), which is far below the movement: 1e-3 of it is the
    # tolerance (measured: 2e-6 of it).
    final_one, final_two = weights(one / 'iter_6.pth'), weights(two /
                                                                'iter_6.pth')
    moved = (final_one - weights(one / 'iter_1.pth')).norm()
    assert moved > 0
    assert (final_one - final_two).norm() < 1e-3 * moved

    metrics = {}
    for name, work_dir in (('one', one), ('two', two)):
        out = tmp_path / f'metrics_{name}.json'
        command = [
            str(work_dir / 'iter_6.pth'), '--out',
            str(out), '--work-dir',
            str(work_dir)
        ] + as_cli(options(1))
        if name == 'one':
            check_ok(run_tool(['tools/test.py', config] + command))
        else:
            run_on_two_nodes(['./dist_test.sh', config, command[0], '1'] +
                             command[1:], tmp_path / 'node1_test.log')
        metrics[name] = json.loads(out.read_text())
    assert metrics['one'].keys() == metrics['two'].keys()
    # EPE is in input pixels (64x48 crops mapped back to the image): the
    # weights differ by float round-off, so the means agree to 1e-3 px.
    assert metrics['one']['EPE'] == pytest.approx(
        metrics['two']['EPE'], abs=1e-3)
    assert metrics['one']['coco/AP'] == pytest.approx(
        metrics['two']['coco/AP'], abs=1e-3)


def worker_of(launcher: subprocess.Popen, timeout: float = 120) -> int:
    """The training process torchrun started (in a session of its own)."""

    def descendants(pid: int):
        try:
            children = Path(f'/proc/{pid}/task/{pid}/children').read_text()
        except OSError:
            return
        for child in map(int, children.split()):
            yield child
            yield from descendants(child)

    deadline = time.time() + timeout
    while time.time() < deadline:
        for pid in descendants(launcher.pid):
            try:
                command = Path(f'/proc/{pid}/cmdline').read_bytes()
            except OSError:
                continue
            if b'tools/train.py' in command:
                return pid
        time.sleep(0.1)
    raise AssertionError('torchrun started no training process')


@pytest.mark.slow
@pytest.mark.parametrize('how', ['dies', 'freezes'])
def test_a_lost_rank_ends_the_job_with_a_clear_message(tmp_path, how):
    """Node 1's training process is SIGKILLed (its connections close) or
    SIGSTOPped (silent: only the collective timeout of 10 s can tell)."""
    config = write_tiny_config(tmp_path)
    timeout = 10
    command = [
        './dist_train.sh', config, '1', '--work-dir',
        str(tmp_path), '--no-validate'
    ] + as_cli(
        tiny_options(**{
            'train_cfg.max_epochs': 1000,
            'env_cfg.dist_cfg.timeout': timeout
        }))
    port = free_port()
    with open(tmp_path / 'node1.log', 'w') as node1_log, started(
            command,
            env=node_env(1, port),
            stdout=node1_log,
            stderr=subprocess.STDOUT) as node1, started(
                command,
                env=node_env(0, port),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True) as node0:
        rank1 = worker_of(node1)
        output = []
        for line in node0.stdout:  # wait until both train
            output.append(line)
            if 'Epoch(train)' in line:
                break
        assert 'Epoch(train)' in output[-1], ''.join(output)[-3000:]
        lost_at = time.time()
        os.kill(rank1, signal.SIGKILL if how == 'dies' else signal.SIGSTOP)
        output.append(node0.stdout.read())
        node0.wait(timeout=120)
        ended_after = time.time() - lost_at
        if how == 'dies':
            node1.wait(timeout=120)
    text = ''.join(output)
    assert node0.returncode != 0
    # The collective timeout bounds the wait (plus the rest of the epoch).
    assert ended_after < timeout + 60, text[-2000:]
    assert text.strip().splitlines()[-1].startswith(
        'error: process 0 of a distributed run lost its peers'), text[-2000:]
    if how == 'dies':  # its launcher says what torchrun saw, last
        last = (tmp_path / 'node1.log').read_text().strip().splitlines()[-1]
        assert last.startswith('error: process 1 of the distributed run '
                               f'(pid {rank1}) was killed by signal SIGKILL')
        assert node1.returncode == 128 + signal.SIGKILL


@pytest.mark.slow
@pytest.mark.parametrize(
    'command,message', [
        (['./dist_train.sh', str(QUICKSTART_CONFIG), '0'],
         'error: NPROC must be a number of processes per machine, 1 or more; '
         'got "0".'),
        (['./dist_test.sh',
          str(QUICKSTART_CONFIG), '2', 'ckpt.pth'
          ], 'error: the order is CONFIG CHECKPOINT NPROC, but "2" looks like '
         'NPROC and "ckpt.pth" like CHECKPOINT (swapped?).'),
        (['./dist_train.sh', '2',
          str(QUICKSTART_CONFIG)
          ], f'error: the order is CONFIG NPROC, but "2" looks like NPROC and '
         f'"{QUICKSTART_CONFIG}" like CONFIG (swapped?).'),
    ],
    ids=['no-processes', 'test-swapped', 'train-swapped'])
def test_launcher_arguments_are_checked_in_one_line(command, message):
    result = run_tool(command)
    assert (result.returncode, result.stdout) == (2, '')
    assert result.stderr == message + '\n'


@pytest.mark.slow
@pytest.mark.parametrize(
    'command,mistake', [
        (['./dist_train.sh', str(QUICKSTART_CONFIG), '2'], {
            'train_cfg.max_epochs': 'abc'
        }),
        (['./dist_test.sh',
          str(QUICKSTART_CONFIG), 'missing.pth', '1'], {}),
    ],
    ids=['train', 'test'])
def test_a_launch_ends_with_the_error_of_its_process(command, mistake,
                                                     tmp_path):
    """torchrun's own failure report (a traceback ending in a ~35-line
    ChildFailedError) would follow the process's error line."""
    result = run_tool(command + ['--work-dir', str(tmp_path)] +
                      as_cli(dict(coco_excerpt_options(), **mistake)))
    assert result.returncode == 2, result.stderr[-3000:]
    assert 'Traceback' not in result.stderr, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith('error: '), result.stderr[-3000:]
    # Each process says it: a config error is the same on all of them.
    assert lines == [lines[-1]] * (2 if 'train' in command[0] else 1)
