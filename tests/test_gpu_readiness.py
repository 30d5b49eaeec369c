"""What would break or waste time on a CUDA GPU, reproduced on the CPU.

No GPU is available here, so each test recreates the condition that matters
on one (see docs/gpu.md):

* fused attention kernels need head dims in multiples of 8: the CPU is
  declared an aligned-attention device and the head dims reaching
  ``F.scaled_dot_product_attention`` are recorded;
* deterministic mode: the aten ops of a training step are recorded and
  compared with those PyTorch has no deterministic CUDA kernel for;
* host synchronisation: code that reads a tensor's value on the host (a
  Python ``if`` on it) cannot run on the ``meta`` device, which has no
  values;
* host-to-device copies: with the model on ``meta``, a copy from the CPU
  shows up as an op whose inputs are on another device than its output.
"""
from typing import List, Set, Tuple

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmpose.registry import MODELS
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from conftest import REPO
from sspose_mm.models.utils import transformer
from test_higherpose_model import training_sample

FAMILY_CONFIGS = {
    'transpose-h-a4': 'transpose/td-hm_transpose-h-a4_1xb14-240e_coco-256x192',
    'sspose-b': 'sspose/td-hm_sspose-b_8xb64-210e_coco-256x192',
    'sharpose-b': 'sharpose/td-hm_sharpose-b-a0.4_4xb64-210e_coco-256x192',
    'higherpose-w32': 'higherpose/ae_higherpose-w32_1xb12-300e_coco-256x256',
}


def build_model(name: str) -> torch.nn.Module:
    cfg = Config.fromfile(REPO / 'configs' / f'{FAMILY_CONFIGS[name]}.py')
    cfg.model.backbone.init_cfg = None  # no pretrained file needed
    torch.manual_seed(0)
    return MODELS.build(cfg.model).eval()


def model_input(name: str) -> torch.Tensor:
    size = (256, 256) if name.startswith('higherpose') else (256, 192)
    return torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(1))


class RecordingOps(TorchDispatchMode):
    """Names of the aten ops run, and those whose tensor inputs lie on
    another device than their outputs (copies between devices)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Set[str] = set()
        self.cross_device: List[Tuple[str, Set[str], Set[str]]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.ops.add(func.overloadpacket.__name__)
        inputs = {t.device.type for t in tree_leaves((args, kwargs))
                  if isinstance(t, torch.Tensor)}
        outputs = {t.device.type for t in tree_leaves(out)
                   if isinstance(t, torch.Tensor)}
        if inputs and outputs and inputs != outputs:
            self.cross_device.append((str(func), inputs, outputs))
        return out


# --- 4. fused attention on CUDA ---------------------------------------------

def aligned_on_cpu(monkeypatch) -> List[int]:
    """Treat the CPU as CUDA for the padding and record the head dims that
    reach the fused kernel."""
    monkeypatch.setattr(transformer, 'ALIGNED_ATTENTION_DEVICES', ('cpu', ))
    head_dims = []
    fused = F.scaled_dot_product_attention

    def recording(q, k, v, **kwargs):
        head_dims.append(q.shape[-1])
        return fused(q, k, v, **kwargs)

    monkeypatch.setattr(F, 'scaled_dot_product_attention', recording)
    return head_dims


@pytest.mark.parametrize('head_dim', [1, 45, 32])
def test_padded_attention_equals_unpadded(monkeypatch, head_dim):
    """Zero-padding q, k and v to a multiple of 8 with the original scale
    gives the same outputs and gradients."""
    generator = torch.Generator().manual_seed(head_dim)
    q, k, v = (torch.randn(2, 3, 50, head_dim, generator=generator,
                           requires_grad=True) for _ in range(3))
    expected = F.scaled_dot_product_attention(q, k, v)
    expected_grads = torch.autograd.grad(expected.square().sum(), (q, k, v))
    head_dims = aligned_on_cpu(monkeypatch)
    out = transformer.scaled_dot_product_attention(q, k, v)
    grads = torch.autograd.grad(out.square().sum(), (q, k, v))
    assert head_dims == [-(-head_dim // 8) * 8]
    # float32 of values around 1: the zero columns add exact zeros, only
    # the kernel's summation order over a longer row may round differently.
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('name', sorted(FAMILY_CONFIGS))
def test_every_family_attends_with_aligned_heads_on_cuda(monkeypatch, name):
    """SSpose-B's 540/12 = 45 and HigherPose's global 4/4 = 1 are padded;
    the model's heatmaps do not change."""
    model, inputs = build_model(name), model_input(name)
    with torch.no_grad():
        expected = model(inputs, None, mode='tensor')
        head_dims = aligned_on_cpu(monkeypatch)
        out = model(inputs, None, mode='tensor')
    assert head_dims and all(d % 8 == 0 for d in head_dims), head_dims
    # float32 through a whole network of values around 1 (see above).
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)


def test_cpu_attention_is_not_padded(monkeypatch):
    """The CPU's fused kernel takes any head dim: no padding there."""
    head_dims = []
    fused = F.scaled_dot_product_attention

    def recording(q, k, v, **kwargs):
        head_dims.append(q.shape[-1])
        return fused(q, k, v, **kwargs)

    monkeypatch.setattr(F, 'scaled_dot_product_attention', recording)
    q = torch.randn(1, 12, 10, 45)
    transformer.scaled_dot_product_attention(q, q, q)
    assert head_dims == [45]


# --- 5. --deterministic on CUDA ---------------------------------------------

# Ops of the list in torch.use_deterministic_algorithms' documentation that
# raise on CUDA in deterministic mode (aten names), as far as pose models
# could reach them: adaptive/3-D pooling and interpolation backwards,
# reflection padding, unpooling.
NO_DETERMINISTIC_CUDA_KERNEL = {
    '_adaptive_avg_pool2d_backward', '_adaptive_avg_pool3d_backward',
    'adaptive_max_pool2d_backward', 'avg_pool3d_backward',
    'fractional_max_pool2d_backward', 'max_unpool2d',
    'upsample_linear1d_backward', 'upsample_bilinear2d_backward',
    'upsample_bicubic2d_backward', 'upsample_trilinear3d_backward',
    'reflection_pad1d_backward', 'reflection_pad2d_backward',
    'reflection_pad3d_backward', 'nll_loss2d_forward'
}


def test_higherpose_training_step_has_deterministic_cuda_kernels():
    """A HigherPose training step (backbone and head losses, backward) runs
    no op that strict deterministic mode refuses on CUDA; the global
    branch's adaptive pooling was one."""
    model = build_model('higherpose-w32').train()
    samples = [training_sample(17, size=128) for _ in range(2)]
    inputs = torch.randn(2, 3, 128, 128)
    with RecordingOps() as recorder:
        losses = model.head.loss(model.extract_feat(inputs), samples)
        sum(losses.values()).backward()
    assert not recorder.ops & NO_DETERMINISTIC_CUDA_KERNEL


def test_fixed_pooling_equals_the_adaptive_one():
    """The 2x2 pooling of HigherPose's global branch is the adaptive pooling
    to half the size of an even map, values and gradients, bit for bit."""
    x = torch.randn(2, 4, 64, 48, requires_grad=True)
    fixed = F.avg_pool2d(x, 2)
    adaptive = F.adaptive_avg_pool2d(x, (32, 24))
    assert torch.equal(fixed, adaptive)
    weight = torch.randn_like(fixed)
    assert torch.equal(torch.autograd.grad(fixed, x, weight)[0],
                       torch.autograd.grad(adaptive, x, weight)[0])
