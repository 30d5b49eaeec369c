"""Deterministic runs, kill-and-resume, interrupted checkpoint writes.

All runs train the quickstart model at 64x48 on the 12 people of the COCO
excerpt: batch 4, so 3 iterations per epoch, a checkpoint every 2 iterations
(so most of them fall inside an epoch).
"""
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from conftest import (QUICKSTART_CONFIG, as_cli, coco_excerpt_options,
                      run_tool, started, tool_command, tool_env)

EPOCHS = 2
ITERS = 3 * EPOCHS


def write_tiny_config(folder: Path, augment: bool = True,
                      heatmap_size: tuple = (12, 16), extra: str = '') -> str:
    """The quickstart config at input 64x48 (heatmaps 16x12); without
    ``augment`` training crops are the plain box crops."""
    augmentation = """
            dict(type='RandomFlip', direction='horizontal'),
            dict(type='ClippedRandomBBoxTransform', rotate_sigma=15,
                 rotate_factor=30),""" if augment else ''
    path = folder / 'tiny_transpose_64x48.py'
    path.write_text(textwrap.dedent(f"""\
        _base_ = [{str(QUICKSTART_CONFIG)!r}]
        input_size = (48, 64)
        codec = dict(type='TransPoseHeatmap', input_size=input_size,
                     heatmap_size={heatmap_size}, sigma=2,
                     blur_kernel_size=11)
        model = dict(head=dict(decoder=codec))
        train_dataloader = dict(dataset=dict(pipeline=[
            dict(type='LoadImage'),
            dict(type='GetBBoxCenterScale', padding=1.25),{augmentation}
            dict(type='TopdownAffine', input_size=input_size, use_udp=True),
            dict(type='GenerateTarget', encoder=codec),
            dict(type='PackPoseInputs')]))
        val_dataloader = dict(dataset=dict(pipeline=[
            dict(type='LoadImage'),
            dict(type='GetBBoxCenterScale', padding=1.25),
            dict(type='TopdownAffine', input_size=input_size, use_udp=True),
            dict(type='PackPoseInputs')]))
        test_dataloader = val_dataloader
        """) + extra)
    return str(path)


def tiny_options(**overrides) -> dict:
    options = dict(coco_excerpt_options(), **{
        'train_cfg.max_epochs': EPOCHS,
        'train_dataloader.num_workers': 1,
        'train_dataloader.persistent_workers': True,
        'default_hooks.checkpoint.by_epoch': False,
        'default_hooks.checkpoint.interval': 2,
        # All of a tiny run's checkpoints: the tests compare them.
        'default_hooks.checkpoint.max_keep_ckpts': ITERS // 2,
        'default_hooks.logger.interval': 1,
    })
    options.update(overrides)
    return options


def train_command(config: str, work_dir: Path, *extra: str) -> list:
    return (['tools/train.py', config, '--work-dir', str(work_dir),
             '--deterministic', '--no-validate', *extra] +
            as_cli(tiny_options()))


def check_ok(result):
    assert result.returncode == 0, (result.stdout[-3000:] +
                                    result.stderr[-3000:])
    return result.stdout + result.stderr


def assert_same_training_state(path_a: Path, path_b: Path,
                               iters: int = ITERS) -> None:
    """Weights, buffers and optimizer state bit for bit, after ``iters``."""
    a = torch.load(path_a, weights_only=True)
    b = torch.load(path_b, weights_only=True)
    assert a['meta']['iter'] == b['meta']['iter'] == iters
    assert a['state_dict'].keys() == b['state_dict'].keys()
    differing = [k for k in a['state_dict']
                 if not torch.equal(a['state_dict'][k], b['state_dict'][k])]
    assert differing == []
    state_a, state_b = a['optimizer']['state'], b['optimizer']['state']
    assert state_a.keys() == state_b.keys()
    for index in state_a:
        for name in state_a[index]:
            assert torch.equal(state_a[index][name], state_b[index][name])


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp('uninterrupted')
    config = write_tiny_config(folder)
    check_ok(run_tool(train_command(config, folder / 'work')))
    return config, folder / 'work' / f'iter_{ITERS}.pth'


def test_deterministic_runs_give_bit_identical_weights(uninterrupted,
                                                       tmp_path):
    config, final = uninterrupted
    check_ok(run_tool(train_command(config, tmp_path)))
    assert_same_training_state(final, tmp_path / f'iter_{ITERS}.pth')


def test_run_killed_mid_epoch_resumes_to_the_same_weights(uninterrupted,
                                                          tmp_path):
    config, final = uninterrupted
    command = tool_command(train_command(config, tmp_path))
    # Same environment as run_tool: bit-identity needs equal thread counts.
    with started(command, env=tool_env(), stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL) as process:
        # iter_2.pth lies inside epoch 1 (3 iterations per epoch); kill as
        # soon as last_checkpoint (written after it, atomically) exists.
        deadline = time.monotonic() + 300
        while not (tmp_path / 'last_checkpoint').exists():
            assert process.poll() is None, 'training ended before the kill'
            assert time.monotonic() < deadline, 'no checkpoint in 300 s'
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert not (tmp_path / f'iter_{ITERS}.pth').exists()
    resumed_from = Path((tmp_path / 'last_checkpoint').read_text().strip())
    assert resumed_from.name in {f'iter_{i}.pth' for i in range(2, ITERS, 2)}

    log = check_ok(run_tool(train_command(config, tmp_path, '--resume')))
    done = int(resumed_from.stem.split('_')[1])
    assert f'resumed epoch: {done // 3}, iter: {done}' in log
    if done % 3:  # inside an epoch: its trained batches are skipped
        assert f'skipping its {done % 3} batches already trained on' in log
    assert_same_training_state(final, tmp_path / f'iter_{ITERS}.pth')


_WRITER = '''
import os, sys, time
import torch
import sspose_mm  # noqa: F401  (installs the atomic local backend)
from mmengine.runner.checkpoint import save_checkpoint

target = sys.argv[1]
save_checkpoint({'state_dict': {'w': torch.zeros(4)}}, target)
print('good checkpoint written', flush=True)
def hang(fd):  # the disk stalls after the bytes were written
    print('writing', flush=True)
    time.sleep(600)
os.fsync = hang
save_checkpoint({'state_dict': {'w': torch.ones(1_000_000)}}, target)
'''


def test_checkpoint_killed_while_being_written_keeps_the_last_good_one(
        tmp_path):
    """mmengine's own ``save_checkpoint``, SIGKILLed between writing the
    bytes and making them the checkpoint: the previous file survives."""
    target = tmp_path / 'epoch_1.pth'
    with started([sys.executable, '-c', _WRITER, str(target)],
                 stdout=subprocess.PIPE, text=True) as process:
        lines = []
        while 'writing' not in lines:
            line = process.stdout.readline()
            assert line, f'the writer ended early: {lines}'
            lines.append(line.strip())
        assert 'good checkpoint written' in lines
        process.kill()
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    state = torch.load(target, weights_only=True)['state_dict']
    assert torch.equal(state['w'], torch.zeros(4))
    # The interrupted bytes are in a hidden temporary file beside it.
    leftovers = [p.name for p in tmp_path.iterdir() if p != target]
    assert len(leftovers) == 1 and leftovers[0].startswith('.epoch_1.pth.')
