"""What training on CUDA needs, checked without a GPU (docs/gpu.md).

* Resume: on a GPU ``Runner.resume`` loads the checkpoint onto CUDA before
  the hooks restore numpy metadata and random states from it. The tensors
  here are ``OnCuda`` wrappers: their device is ``cuda:0`` for every check
  PyTorch makes (``torch.set_rng_state`` refuses them), ``.numpy()`` refuses
  them with CUDA's message, and ``.cpu()`` and ``.tolist()`` copy their data
  to the host as from a GPU.
* No silent CPU fallback: this machine's PyTorch genuinely cannot use CUDA
  (no driver); GPUs are made visible by monkeypatching, or by an
  ``nvidia-smi`` on the PATH that lists one, as on a machine whose driver is
  too old for the wheel's CUDA.
* Random numbers per GPU: two gloo processes stand for two GPUs.
* Mixed precision: mmengine's ``AmpOptimWrapper`` (which refuses to start
  without CUDA, so its check is monkeypatched) with PyTorch's loss scaler
  for the CPU (``torch.amp.GradScaler``, the class CUDA's is too), and a
  forward in float16 autocast on the CPU that overflows for real.
"""
import os
import stat
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.optim.optimizer import amp_optimizer_wrapper
from torch.utils._pytree import tree_map

import sspose_mm.env as env
from sspose_mm.engine.hooks import (ExactResumeHook, NanGuardHook,
                                    PlainCheckpointHook)
from sspose_mm.errors import DeviceError, TrainingDiverged
from sspose_mm.models.pretrainers.sspose_mae import random_masking
from sspose_mm.synthetic import ensure_synthetic_coco
from conftest import QUICKSTART_CONFIG, as_cli, coco_excerpt_options, run_tool
from test_reliability_resume import assert_same_training_state, check_ok
from test_runner import free_port


class OnCuda(torch.Tensor):
    """A tensor that PyTorch sees on ``cuda:0``, backed by a host tensor."""

    @staticmethod
    def __new__(cls, data: torch.Tensor) -> 'OnCuda':
        wrapper = torch.Tensor._make_wrapper_subclass(
            cls,
            data.shape,
            strides=data.stride(),
            dtype=data.dtype,
            device=torch.device('cuda', 0))
        wrapper.host = data
        return wrapper

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if (func is torch.ops.aten._to_copy.default
                and kwargs.get('device') == torch.device('cpu')):
            return args[0].host.clone()  # the device-to-host copy
        out = func(*tree_map(cls._unwrap, args),
                   **tree_map(cls._unwrap, kwargs))
        return tree_map(
            lambda x: OnCuda(x) if isinstance(x, torch.Tensor) else x, out)

    def numpy(self, *args, **kwargs):
        raise TypeError(  # CUDA's own message
            "can't convert cuda:0 device type tensor to numpy. Use "
            'Tensor.cpu() to copy the tensor to host memory first.')

    def tolist(self) -> list:  # works on CUDA tensors (through the host)
        return self.host.tolist()

    @staticmethod
    def _unwrap(x):
        return x.host if isinstance(x, OnCuda) else x


def test_on_cuda_fails_where_a_cuda_tensor_fails():
    """The stand-in is refused where host memory is needed."""
    state = OnCuda(torch.get_rng_state())
    assert state.device.type == 'cuda'
    with pytest.raises(TypeError, match='RNG state must be a torch.Byte'):
        torch.set_rng_state(state)
    with pytest.raises(TypeError, match="can't convert cuda:0"):
        state.numpy()
    assert torch.equal(state.cpu(), torch.get_rng_state())


def resumed_on_cuda(checkpoint: dict) -> dict:
    """``checkpoint`` as ``Runner.resume`` gives it to the hooks on a GPU:
    saved, loaded, every tensor moved to CUDA (``map_location='cuda'``)."""
    return tree_map(lambda x: OnCuda(x)
                    if isinstance(x, torch.Tensor) else x, checkpoint)


def test_resume_on_cuda_restores_metadata_and_random_states(tmp_path):
    buffer = HistoryBuffer()
    for value in (1.0, 2.5):
        buffer.update(value)
    checkpoint = {
        'meta': {
            'epoch': 1,
            'iter': 2,
            'dataset_meta': {
                'sigmas': np.array([0.1, 0.2], dtype=np.float32)
            }
        },
        'message_hub': {
            'log_scalars': {
                'train/loss': buffer
            }
        }
    }
    resume_hook, plain_hook = ExactResumeHook(), PlainCheckpointHook()
    # The hooks in the order the runner calls them (priorities LOW, VERY_LOW).
    resume_hook.before_save_checkpoint(None, checkpoint)
    plain_hook.before_save_checkpoint(None, checkpoint)
    expected = (torch.rand(3), np.random.rand(3))
    torch.save(checkpoint, tmp_path / 'iter_2.pth')

    loaded = resumed_on_cuda(
        torch.load(tmp_path / 'iter_2.pth', weights_only=True))
    assert loaded['rng_states'][0]['torch'].device.type == 'cuda'
    runner = SimpleNamespace(
        _resume=True,
        train_loop=SimpleNamespace(
            dataloader=SimpleNamespace(
                num_workers=0, persistent_workers=False)))
    resume_hook.after_load_checkpoint(runner, loaded)
    plain_hook.after_load_checkpoint(runner, loaded)
    torch.manual_seed(1)
    np.random.seed(1)  # a resumed process starts from other states
    resume_hook.restore_pending(runner)

    assert torch.equal(torch.rand(3), expected[0])
    np.testing.assert_array_equal(np.random.rand(3), expected[1])
    np.testing.assert_array_equal(loaded['meta']['dataset_meta']['sigmas'],
                                  np.array([0.1, 0.2], dtype=np.float32))
    restored = loaded['message_hub']['log_scalars']['train/loss']
    np.testing.assert_array_equal(restored.data[0], buffer.data[0])


# What torch.cuda.init() raises where the driver is older than the wheel's
# CUDA (torch/csrc/cuda/Module.cpp, c10/cuda).
DRIVER_TOO_OLD = (
    'The NVIDIA driver on your system is too old (found version 12020). '
    'Please update your GPU driver by downloading and installing a new '
    'version from the URL: http://www.nvidia.com/Download/index.aspx')


def fake_nvidia_smi(folder, listing: str) -> str:
    """A folder for the PATH with an ``nvidia-smi`` printing ``listing``."""
    script = folder / 'nvidia-smi'
    script.write_text(f"#!/bin/sh\necho '{listing}'\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(folder)


def test_gpus_are_seen_through_device_files_or_nvidia_smi(
        tmp_path, monkeypatch):
    dev = tmp_path / 'dev'
    dev.mkdir()
    for name in ('nvidiactl', 'nvidia-uvm', 'nvidia-modeset'):
        (dev / name).touch()  # the driver's, present without any GPU too
    monkeypatch.setenv('PATH', str(tmp_path / 'nowhere'))
    assert env.visible_nvidia_gpus(str(dev)) == []
    for name in ('nvidia1', 'nvidia0'):
        (dev / name).touch()
    assert env.visible_nvidia_gpus(
        str(dev)) == [str(dev / 'nvidia0'),
                      str(dev / 'nvidia1')]

    empty = tmp_path / 'empty_dev'
    empty.mkdir()
    monkeypatch.setenv(
        'PATH',
        fake_nvidia_smi(tmp_path,
                        'GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-1234)'))
    assert env.visible_nvidia_gpus(
        str(empty)) == ['GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-1234)']
    fake_nvidia_smi(tmp_path, 'No devices were found')
    assert env.visible_nvidia_gpus(str(empty)) == []


@pytest.fixture
def gpus_present(monkeypatch):
    monkeypatch.setattr(env, 'visible_nvidia_gpus',
                        lambda: ['/dev/nvidia0', '/dev/nvidia1'])
    monkeypatch.delenv('CUDA_VISIBLE_DEVICES', raising=False)


def test_old_driver_stops_with_what_to_install(gpus_present, monkeypatch):

    def init():
        raise RuntimeError(DRIVER_TOO_OLD)

    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(torch.cuda, 'init', init)
    monkeypatch.setattr(torch.version, 'cuda', '13.0')
    with pytest.raises(DeviceError) as error:
        env.check_gpus_usable()
    message = str(error.value)
    assert '\n' not in message
    assert ('2 NVIDIA GPU(s) found (/dev/nvidia0) but PyTorch '
            f'{torch.__version__} cannot use them (The NVIDIA driver on your '
            'system is too old (found version 12020))') in message
    assert 'for CUDA 13.0 and needs NVIDIA driver >= 580.65.06' in message
    version = torch.__version__.split('+')[0]
    assert (f'pip install torch=={version} torchvision==' in message and
            '--index-url https://download.pytorch.org/whl/cu126' in message)
    # The tools choose the device through the same check.
    with pytest.raises(DeviceError):
        env.resolve_device()
    assert env.resolve_device('cpu') == 'cpu'

    monkeypatch.setattr(torch.version, 'cuda', None)
    with pytest.raises(DeviceError, match='it is a CPU-only build'):
        env.check_gpus_usable()


def test_cpu_wanted_or_no_gpu_passes(gpus_present, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    for hidden in ('', '-1'):
        monkeypatch.setenv('CUDA_VISIBLE_DEVICES', hidden)
        env.check_gpus_usable()
    monkeypatch.delenv('CUDA_VISIBLE_DEVICES')
    monkeypatch.setattr(env, 'visible_nvidia_gpus', lambda: [])
    env.check_gpus_usable()
    assert env.resolve_device() == 'cpu'


def test_the_first_process_of_a_machine_checks_its_gpus(
        gpus_present, monkeypatch):
    """tools/dist_run.sh checks before torchrun starts; in the processes
    only local rank 0 checks again (so a direct torchrun launch stops
    too), not each of the 8 of a node."""
    monkeypatch.setattr(torch.version, 'cuda', None)  # a CPU-only build
    monkeypatch.setenv('LOCAL_RANK', '1')
    env.setup_distributed(Config(), 'none')
    monkeypatch.setenv('LOCAL_RANK', '0')
    with pytest.raises(DeviceError, match='it is a CPU-only build'):
        env.setup_distributed(Config(), 'pytorch')


def test_gpu_older_than_the_wheels_kernels_stops(gpus_present, monkeypatch):
    capabilities = [(8, 0), (7, 0)]  # an A100 and a V100
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 2)
    monkeypatch.setattr(torch.cuda, 'get_arch_list',
                        lambda: ['sm_75', 'sm_80', 'sm_86', 'sm_90'])
    monkeypatch.setattr(torch.cuda, 'get_device_capability',
                        lambda i: capabilities[i])
    monkeypatch.setattr(torch.cuda, 'get_device_name',
                        lambda i: ['NVIDIA A100', 'Tesla V100'][i])
    with pytest.raises(
            DeviceError,
            match=r'GPU 1 \(Tesla V100, compute '
            r'capability 7.0\) is too old'):
        env.check_gpus_usable()
    capabilities[1] = (8, 9)  # Ada runs the sm_86 kernels
    env.check_gpus_usable()


def test_kernel_compatibility_follows_cuda_rules():
    archs = ['sm_75', 'sm_80', 'sm_86', 'sm_90', 'sm_100', 'sm_120']
    assert env._runs_on((8, 9), archs)  # same major, newer minor
    assert env._runs_on((12, 1), archs)
    assert not env._runs_on((7, 0), archs)  # V100: older minor
    assert not env._runs_on((11, 0), archs)  # no sm_11x, no PTX
    assert env._runs_on((11, 0), archs + ['compute_100'])  # PTX JIT
    assert env._runs_on((9, 0), ['sm_90a'])


@pytest.mark.slow
@pytest.mark.skipif(
    torch.cuda.is_available(),
    reason='needs a machine where CUDA does not work')
def test_train_launch_stops_on_gpus_cuda_cannot_use(tmp_path):
    """``nvidia-smi`` lists a GPU; this PyTorch finds no usable driver. The
    launch ends with one line instead of two CPU processes training."""
    env = {
        'PATH':
        fake_nvidia_smi(
            tmp_path, 'GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-1234)') + ':' +
        os.environ['PATH']
    }
    for command in (['./dist_train.sh',
                     str(QUICKSTART_CONFIG),
                     '2'], ['tools/train.py',
                            str(QUICKSTART_CONFIG)]):
        result = run_tool(
            command + ['--work-dir', str(tmp_path / 'work')] + as_cli(
                dict(coco_excerpt_options(), **{'train_cfg.max_epochs': 1})),
            env=env,
            timeout=300)
        assert result.returncode == 2, result.stderr[-2000:]
        assert result.stdout == ''
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(
            'error: 1 NVIDIA GPU(s) found (GPU 0: NVIDIA A100'), lines
    assert not (tmp_path / 'work').exists()


MAE_CONFIG = 'configs/sspose/mae_sspose-t_1xb16-20e_synthetic-128x96.py'


def mae_on_two_processes(data, work_dir, *extra: str) -> str:
    """The tiny MAE pretraining at 64x48 on 8 synthetic scenes, 2 processes
    of batch 2: 2 iterations an epoch, 2 epochs, a checkpoint after each
    iteration, so iter_1.pth lies inside epoch 1."""
    options = {
        'train_dataloader.dataset.data_root': str(data),
        'train_dataloader.batch_size': 2,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'train_cfg.max_epochs': 2,
        'model.backbone.img_size': '"(64,48)"',
        'train_dataloader.dataset.pipeline.1.input_size': '"(48,64)"',
        'default_hooks.checkpoint.by_epoch': False,
        'default_hooks.checkpoint.interval': 1,
        'default_hooks.checkpoint.max_keep_ckpts': 4,
        'env_cfg.dist_cfg.timeout': 120,  # a failure ends, never hangs
    }
    return check_ok(
        run_tool(
            [
                './dist_train.sh', MAE_CONFIG, '2', '--work-dir',
                str(work_dir), '--deterministic', '--no-validate', *extra
            ] + as_cli(options),
            env={'PORT': free_port()},
            timeout=600))


@pytest.mark.slow
def test_each_process_draws_its_own_masks_and_resumes_exactly(tmp_path):
    data = tmp_path / 'synthetic'
    ensure_synthetic_coco(data, splits={'train': 8})
    log = mae_on_two_processes(data, tmp_path / 'whole')
    assert 'Distributed training: True' in log

    # The random states both processes continue from after iteration 1, and
    # the masks (MAE's, for 2 crops of 8x6 tokens) drawn from them.
    states = torch.load(
        tmp_path / 'whole' / 'iter_1.pth', weights_only=True)['rng_states']
    assert len(states) == 2
    masks = []
    for state in states:
        torch.set_rng_state(state['torch'])
        masks.append(random_masking(2, 48, 0.75)[2])
    assert not torch.equal(masks[0], masks[1])
    assert states[0]['numpy'].tolist() != states[1]['numpy'].tolist()

    # Killed after iteration 1 and resumed (each process from its own
    # saved state), the run ends where the whole one ended.
    log = mae_on_two_processes(data, tmp_path / 'resumed', '--resume',
                               str(tmp_path / 'whole' / 'iter_1.pth'))
    assert 'skipping its 1 batches already trained on' in log
    assert_same_training_state(
        tmp_path / 'whole' / 'iter_4.pth',
        tmp_path / 'resumed' / 'iter_4.pth',
        iters=4)


def amp_wrapper(monkeypatch, model: torch.nn.Module,
                **scaler_args) -> AmpOptimWrapper:
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available',
                        lambda: True)
    with warnings.catch_warnings():  # CUDA's scaler, disabled, replaced here
        warnings.simplefilter('ignore')
        wrapper = AmpOptimWrapper(
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            dtype='float16')
    wrapper.loss_scaler = torch.amp.GradScaler('cpu', **scaler_args)
    return wrapper


def train_step(model: torch.nn.Module, wrapper: OptimWrapper,
               value: float) -> dict:
    """One step on inputs of ``value``, in float16 as ``AmpOptimWrapper``'s
    context runs it on CUDA: 1e5 is above float16's largest value, 65504."""
    with torch.autocast('cpu', dtype=torch.float16):
        out = model(torch.full((2, 4), value))
    loss = out.float().pow(2).mean()
    wrapper.update_params(loss)
    return {'loss': loss.detach()}


def test_nan_guard_lets_the_loss_scaler_skip_fp16_overflows(
        monkeypatch, tmp_path, logged_warnings):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    wrapper = amp_wrapper(monkeypatch, model)
    runner = SimpleNamespace(
        work_dir=str(tmp_path), iter=0, epoch=0, optim_wrapper=wrapper)
    hook = NanGuardHook(max_amp_skips=3)

    before = [p.detach().clone() for p in model.parameters()]
    outputs = train_step(model, wrapper, 1e5)
    assert not torch.isfinite(outputs['loss'])
    hook.after_train_iter(runner, 0, outputs=outputs)
    # The scaler skipped the update and halved its scale.
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert wrapper.loss_scaler.get_scale() == 2.**16 / 2
    assert 'the loss scaler skipped this update (scale now 32768)' in (
        logged_warnings[-1].getMessage())

    hook.after_train_iter(runner, 1, outputs=train_step(model, wrapper, 1.))
    assert not all(
        torch.equal(a, b) for a, b in zip(before, model.parameters()))
    # A finite loss in between: the count of skips in a row starts again.
    for batch in range(2):
        hook.after_train_iter(
            runner, batch, outputs=train_step(model, wrapper, 1e5))
    with pytest.raises(
            TrainingDiverged,
            match='not finite in 3 iterations '
            'in a row.*Train it in bfloat16'):
        hook.after_train_iter(
            runner, 2, outputs=train_step(model, wrapper, 1e5))


@pytest.mark.parametrize('wrapper_kind', ['plain', 'scaler_disabled'])
def test_nan_guard_stops_at_once_where_nothing_skips_the_update(
        monkeypatch, tmp_path, wrapper_kind):
    model = torch.nn.Linear(4, 1)
    if wrapper_kind == 'plain':
        wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    else:
        wrapper = amp_wrapper(monkeypatch, model, enabled=False)
    runner = SimpleNamespace(
        work_dir=str(tmp_path), iter=0, epoch=0, optim_wrapper=wrapper)
    with pytest.raises(
            TrainingDiverged, match='the loss is not finite at '
            'iteration 1'):
        NanGuardHook().after_train_iter(
            runner, 0, outputs=train_step(model, wrapper, 1e5))
