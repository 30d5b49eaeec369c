"""What training on CUDA needs, checked without a GPU (docs/gpu.md).

* Resume: on a GPU ``Runner.resume`` loads the checkpoint onto CUDA before
  the hooks restore numpy metadata and random states from it. The tensors
  here are ``OnCuda`` wrappers: their device is ``cuda:0`` for every check
  PyTorch makes (``torch.set_rng_state`` refuses them), ``.numpy()`` refuses
  them with CUDA's message, and ``.cpu()`` and ``.tolist()`` copy their data
  to the host as from a GPU.
"""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from torch.utils._pytree import tree_map

from sspose_mm.engine.hooks import ExactResumeHook, PlainCheckpointHook


class OnCuda(torch.Tensor):
    """A tensor that PyTorch sees on ``cuda:0``, backed by a host tensor."""

    @staticmethod
    def __new__(cls, data: torch.Tensor) -> 'OnCuda':
        wrapper = torch.Tensor._make_wrapper_subclass(
            cls, data.shape, strides=data.stride(), dtype=data.dtype,
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
    return tree_map(lambda x: OnCuda(x) if isinstance(x, torch.Tensor) else x,
                    checkpoint)


def test_resume_on_cuda_restores_metadata_and_random_states(tmp_path):
    buffer = HistoryBuffer()
    for value in (1.0, 2.5):
        buffer.update(value)
    checkpoint = {
        'meta': {'epoch': 1, 'iter': 2, 'dataset_meta': {
            'sigmas': np.array([0.1, 0.2], dtype=np.float32)}},
        'message_hub': {'log_scalars': {'train/loss': buffer}}}
    resume_hook, plain_hook = ExactResumeHook(), PlainCheckpointHook()
    # The hooks in the order the runner calls them (priorities LOW, VERY_LOW).
    resume_hook.before_save_checkpoint(None, checkpoint)
    plain_hook.before_save_checkpoint(None, checkpoint)
    expected = (torch.rand(3), np.random.rand(3))
    torch.save(checkpoint, tmp_path / 'iter_2.pth')

    loaded = resumed_on_cuda(
        torch.load(tmp_path / 'iter_2.pth', weights_only=True))
    assert loaded['rng_states'][0]['torch'].device.type == 'cuda'
    runner = SimpleNamespace(_resume=True, train_loop=SimpleNamespace(
        dataloader=SimpleNamespace(num_workers=0, persistent_workers=False)))
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
