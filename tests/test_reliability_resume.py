"""Deterministic runs, kill-and-resume, interrupted checkpoint writes.

All runs train the quickstart model at 64x48 on the 12 people of the COCO
excerpt: batch 4, so 3 iterations per epoch, a checkpoint every 2 iterations
(so most of them fall inside an epoch).
"""
import builtins
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub, MMLogger

from sspose_mm.cli.launch import find_resume_checkpoint
from sspose_mm.engine.hooks import AtomicCheckpointHook
from sspose_mm.fileio import atomic_write
from conftest import (QUICKSTART_CONFIG, as_cli, coco_excerpt_options,
                      run_tool, started, tool_command, tool_env)

EPOCHS = 2
ITERS = 3 * EPOCHS


def write_tiny_config(folder: Path,
                      augment: bool = True,
                      heatmap_size: tuple = (12, 16),
                      extra: str = '') -> str:
    """The quickstart config at input 64x48 (heatmaps 16x12); without
    ``augment`` training crops are the plain box crops."""
    augmentation = """
            dict(type='RandomFlip', direction='horizontal'),
            dict(type='ClippedRandomBBoxTransform', rotate_sigma=15,
                 rotate_factor=30),""" if augment else ''
    path = folder / 'tiny_transpose_64x48.py'
    path.write_text(
        textwrap.dedent(f"""\
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
    options = dict(
        coco_excerpt_options(),
        **{
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
    return ([
        'tools/train.py', config, '--work-dir',
        str(work_dir), '--deterministic', '--no-validate', *extra
    ] + as_cli(tiny_options()))


def check_ok(result):
    assert result.returncode == 0, (
        result.stdout[-3000:] + result.stderr[-3000:])
    return result.stdout + result.stderr


def assert_same_training_state(path_a: Path,
                               path_b: Path,
                               iters: int = ITERS) -> None:
    """Weights, buffers and optimizer state bit for bit, after ``iters``."""
    a = torch.load(path_a, weights_only=True)
    b = torch.load(path_b, weights_only=True)
    assert a['meta']['iter'] == b['meta']['iter'] == iters
    assert a['state_dict'].keys() == b['state_dict'].keys()
    differing = [
        k for k in a['state_dict']
        if not torch.equal(a['state_dict'][k], b['state_dict'][k])
    ]
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


@pytest.mark.slow
def test_deterministic_runs_give_bit_identical_weights(uninterrupted,
                                                       tmp_path):
    config, final = uninterrupted
    check_ok(run_tool(train_command(config, tmp_path)))
    assert_same_training_state(final, tmp_path / f'iter_{ITERS}.pth')


@pytest.mark.slow
def test_run_killed_mid_epoch_resumes_to_the_same_weights(
        uninterrupted, tmp_path):
    config, final = uninterrupted
    command = tool_command(train_command(config, tmp_path))
    # Same environment as run_tool: bit-identity needs equal thread counts.
    with started(
            command,
            env=tool_env(),
            stdout=subprocess.DEVNULL,
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


@pytest.mark.slow
def test_resume_with_an_empty_pointer_takes_the_newest_complete_checkpoint(
        uninterrupted, tmp_path):
    """An empty ``last_checkpoint`` (what mmengine's plain write leaves when
    killed between open and write), a cut-off newer checkpoint beside the
    good ones: --resume says which checkpoint it takes, the newest complete
    one, and ends with the uninterrupted run's state."""
    config, final = uninterrupted
    for done in (2, 4):  # copied in order: iter_4.pth is the newer
        shutil.copy(final.parent / f'iter_{done}.pth', tmp_path)
    whole = final.read_bytes()
    (tmp_path / f'iter_{ITERS}.pth').write_bytes(whole[:len(whole) // 2])
    (tmp_path / 'last_checkpoint').write_text('')
    log = check_ok(run_tool(train_command(config, tmp_path, '--resume')))
    assert (f'--resume: {tmp_path}/last_checkpoint is empty; resuming from '
            'the newest complete checkpoint in the work dir, '
            f'{tmp_path}/iter_4.pth.') in log
    assert 'resumed epoch: 1, iter: 4' in log
    assert_same_training_state(final, tmp_path / f'iter_{ITERS}.pth')


def save_tiny_checkpoint(path: Path, age: int) -> None:
    """A checkpoint file ``age`` seconds older than the others."""
    torch.save({'state_dict': {'w': torch.zeros(2)}}, path)
    os.utime(path, (time.time() - age, time.time() - age))


def test_resume_with_a_missing_or_dangling_pointer(tmp_path):
    """No pointer, or one naming a deleted file: the newest complete
    runner checkpoint (not an encoder or best-only one, not a cut-off
    file), with the reason; none at all: a fresh start, said so."""
    path, note = find_resume_checkpoint(str(tmp_path))
    assert path is None
    assert note == (f'--resume: there is no {tmp_path}/last_checkpoint and '
                    'no complete checkpoint (epoch_N.pth, iter_N.pth) is in '
                    'the work dir; training starts from the beginning.')
    save_tiny_checkpoint(tmp_path / 'epoch_2.pth', age=30)
    save_tiny_checkpoint(tmp_path / 'epoch_1.pth', age=20)  # newer by time
    for newer in ('encoder_epoch_3.pth', 'best_coco_AP_epoch_3.pth'):
        save_tiny_checkpoint(tmp_path / newer, age=0)
    (tmp_path / 'epoch_3.pth').write_bytes(
        (tmp_path / 'epoch_2.pth').read_bytes()[:200])
    path, note = find_resume_checkpoint(str(tmp_path))
    assert path == str(tmp_path / 'epoch_1.pth')
    assert note.startswith(f'--resume: there is no {tmp_path}/'
                           'last_checkpoint; resuming from the newest')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_9.pth'))
    path, note = find_resume_checkpoint(str(tmp_path))
    assert path == str(tmp_path / 'epoch_1.pth')
    assert f'names {tmp_path}/epoch_9.pth, which does not exist;' in note
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_3.pth'))
    assert 'epoch_3.pth, which is incomplete;' in find_resume_checkpoint(
        str(tmp_path))[1]
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_2.pth'))
    assert find_resume_checkpoint(str(tmp_path)) == (str(tmp_path /
                                                         'epoch_2.pth'), None)


class Killed(BaseException):
    """Stands for a SIGKILL: nothing after it runs."""


def test_last_checkpoint_is_never_left_empty(tmp_path, monkeypatch):
    """The default checkpoint hook, killed after mmengine opened its
    ``last_checkpoint`` for writing (which empties the file) and before it
    wrote: the work dir's pointer still names the previous checkpoint."""
    runner = SimpleNamespace(
        work_dir=str(tmp_path),
        logger=MMLogger.get_current_instance(),
        message_hub=MessageHub.get_instance('test_last_checkpoint'),
        save_checkpoint=lambda out_dir, filename, *args, **kwargs:
        atomic_write(os.path.join(out_dir, filename), b'weights'))
    hook = AtomicCheckpointHook(interval=1, by_epoch=False)
    hook.before_train(runner)
    hook._save_checkpoint_with_step(runner, 1, meta={})
    pointer = tmp_path / 'last_checkpoint'
    assert pointer.read_text() == str(tmp_path / 'iter_1.pth')

    class DiesBeforeWriting:

        def __init__(self, file):
            self.file = file

        def __enter__(self):
            return self

        def __exit__(self, *error):
            self.file.close()

        def write(self, text):
            raise Killed

    plain_open = builtins.open

    def killed_while_writing(path, mode='r', *args, **kwargs):
        file = plain_open(path, mode, *args, **kwargs)
        if os.path.basename(path) == 'last_checkpoint' and 'w' in mode:
            return DiesBeforeWriting(file)
        return file

    monkeypatch.setattr(builtins, 'open', killed_while_writing)
    with pytest.raises(Killed):
        hook._save_checkpoint_with_step(runner, 2, meta={})
    monkeypatch.setattr(builtins, 'open', plain_open)
    assert pointer.read_text() == str(tmp_path / 'iter_1.pth')
    hook._save_checkpoint_with_step(runner, 2, meta={})
    assert pointer.read_text() == str(tmp_path / 'iter_2.pth')


_WRITER = '''
import os, sys, time
import torch
import sspose_mm  # noqa: F401  (registers the atomic local backend)
from mmengine.runner.checkpoint import save_checkpoint
from sspose_mm.engine.hooks import AtomicCheckpointHook

# The file backend the runtime config's checkpoint hook writes through.
backend_args = AtomicCheckpointHook(interval=1).backend_args
target = sys.argv[1]
save_checkpoint({'state_dict': {'w': torch.zeros(4)}}, target,
                backend_args=backend_args)
print('good checkpoint written', flush=True)
def hang(fd):  # the disk stalls after the bytes were written
    print('writing', flush=True)
    time.sleep(600)
os.fsync = hang
save_checkpoint({'state_dict': {'w': torch.ones(1_000_000)}}, target,
                backend_args=backend_args)
'''


@pytest.mark.slow
def test_checkpoint_killed_while_being_written_keeps_the_last_good_one(
        tmp_path):
    """mmengine's own ``save_checkpoint``, SIGKILLed between writing the
    bytes and making them the checkpoint: the previous file survives."""
    target = tmp_path / 'epoch_1.pth'
    with started([sys.executable, '-c', _WRITER,
                  str(target)],
                 stdout=subprocess.PIPE,
                 text=True) as process:
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
