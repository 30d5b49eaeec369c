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
from mmpose.models.losses import AssociativeEmbeddingLoss
from mmpose.registry import HOOKS, MODELS
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from sspose_mm.errors import ConfigError
from sspose_mm.models.losses import BatchedAssociativeEmbeddingLoss
from sspose_mm.models.utils import transformer
from conftest import REPO
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
        inputs = {
            t.device.type
            for t in tree_leaves((args, kwargs))
            if isinstance(t, torch.Tensor)
        }
        outputs = {
            t.device.type
            for t in tree_leaves(out) if isinstance(t, torch.Tensor)
        }
        if inputs and outputs and inputs != outputs:
            self.cross_device.append((str(func), inputs, outputs))
        return out


# --- 4. fused attention on CUDA ---------------------------------------------


def kernel_head_dims(monkeypatch) -> List[int]:
    """Record the head dims that reach the fused kernel."""
    head_dims = []
    fused = F.scaled_dot_product_attention

    def recording(q, k, v, **kwargs):
        head_dims.append(q.shape[-1])
        return fused(q, k, v, **kwargs)

    monkeypatch.setattr(F, 'scaled_dot_product_attention', recording)
    return head_dims


def aligned_on_cpu(monkeypatch) -> List[int]:
    """Treat the CPU as CUDA for the padding and record the head dims that
    reach the fused kernel."""
    monkeypatch.setattr(transformer, 'ALIGNED_ATTENTION_DEVICES', ('cpu', ))
    return kernel_head_dims(monkeypatch)


@pytest.mark.parametrize('head_dim', [1, 45, 32])
def test_padded_attention_equals_unpadded(monkeypatch, head_dim):
    """Zero-padding q, k and v to a multiple of 8 with the original scale
    gives the same outputs and gradients."""
    generator = torch.Generator().manual_seed(head_dim)
    q, k, v = (
        torch.randn(
            2, 3, 50, head_dim, generator=generator, requires_grad=True)
        for _ in range(3))
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
    head_dims = kernel_head_dims(monkeypatch)
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
    assert torch.equal(
        torch.autograd.grad(fixed, x, weight)[0],
        torch.autograd.grad(adaptive, x, weight)[0])


# --- 7. throughput traps ----------------------------------------------------


def ae_inputs(tag_dim: int, dtype=torch.float64):
    """Tags of four images and their people: 3 people (one with every
    keypoint invisible), none, one, five; about 30% invisible keypoints."""
    generator = torch.Generator().manual_seed(tag_dim)
    K, H, W = 5, 6, 7
    tags = torch.randn(4, tag_dim * K, H, W, dtype=dtype, generator=generator)
    indices = []
    for people in (3, 0, 1, 5):
        positions = torch.randint(0, H * W, (people, K), generator=generator)
        visible = (torch.rand(people, K, generator=generator) > 0.3).long()
        indices.append(torch.stack((positions, visible), dim=-1))
    indices[0][1, :, 1] = 0
    return tags, indices


@pytest.mark.parametrize('tag_dim', [1, 2])
def test_batched_ae_loss_equals_mmposes(tag_dim):
    tags, indices = ae_inputs(tag_dim)
    results = []
    for loss in (AssociativeEmbeddingLoss(0.001, 0.5),
                 BatchedAssociativeEmbeddingLoss(0.001, 0.5)):
        leaf = tags.clone().requires_grad_()
        pull, push = loss(leaf, indices)
        (pull + 3 * push).backward()
        results.append((pull, push, leaf.grad))
    assert results[0][0] > 0 and results[0][1] > 0
    # float64; only the summation order differs.
    for ours, mmpose in zip(results[1], results[0]):
        torch.testing.assert_close(ours, mmpose, rtol=1e-12, atol=1e-18)


def test_higherpose_tag_loss_never_reads_values_on_the_host():
    """On meta tensors (no values) MMPose's loss fails at its first
    per-keypoint ``if``, which on CUDA waits for the GPU; the head's loss
    runs through."""
    tags, indices = ae_inputs(1, torch.float32)
    tags, indices = tags.to('meta'), [i.to('meta') for i in indices]
    with pytest.raises(RuntimeError, match='meta'):
        AssociativeEmbeddingLoss()(tags, indices)
    head = build_model('higherpose-w32').head
    pull, push = head.loss_module.tag_loss(tags, indices)
    assert pull.shape == push.shape == ()


def test_position_tables_are_not_copied_to_the_device_every_forward():
    """TransPose's and HigherPose's sine tables are made once per device."""
    for name, size in (('transpose-h-a4', (64, 48)), ('higherpose-w32', (64,
                                                                         64))):
        model = build_model(name).to('meta')
        inputs = torch.empty(1, 3, *size, device='meta')
        model(inputs, None, mode='tensor')  # may make the tables
        with RecordingOps() as recorder:
            model(inputs, None, mode='tensor')
        assert not recorder.cross_device, (name, recorder.cross_device)


def test_oks_sigmas_move_with_the_sharpose_head():
    head = build_model('sharpose-b').head.to('meta')
    heatmaps = torch.empty(2, 17, 64, 48, device='meta')
    with RecordingOps() as recorder:
        head.instance_oks(heatmaps, heatmaps,
                          torch.empty(2, 17, device='meta'),
                          torch.empty(2, 2, device='meta'))
    assert not recorder.cross_device, recorder.cross_device
    # Checkpoints keep their keys.
    assert 'oks_sigmas' not in head.state_dict()


@pytest.fixture
def matmul_precision():
    saved = torch.get_float32_matmul_precision()
    yield
    torch.set_float32_matmul_precision(saved)


def test_configs_use_tf32_matmuls_and_cudnn_benchmark(matmul_precision):
    """The configs name the hook that sets the precision, so MMPose's own
    tools apply it too."""
    for name in FAMILY_CONFIGS.values():
        cfg = Config.fromfile(REPO / 'configs' / f'{name}.py')
        assert cfg.env_cfg.cudnn_benchmark is True
        # mmpose's other environment settings are kept.
        assert cfg.env_cfg.dist_cfg.backend == 'nccl'
        torch.set_float32_matmul_precision('highest')
        HOOKS.build(cfg.default_hooks.matmul_precision).before_run(None)
        assert torch.get_float32_matmul_precision() == 'high'
    HOOKS.build(dict(type='MatmulPrecisionHook',
                     precision='highest')).before_run(None)
    assert torch.get_float32_matmul_precision() == 'highest'


def test_unknown_matmul_precision_is_refused():
    with pytest.raises(
            ConfigError, match="one of highest, high, medium, "
            "got 'tf32'"):
        HOOKS.build(dict(type='MatmulPrecisionHook', precision='tf32'))


def test_matmul_precision_leaves_cpu_results_unchanged(matmul_precision):
    """'high' affects CUDA only, so CPU runs (and the parity tests) keep
    their float32 results bit for bit."""
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(64, 300, generator=generator),
            torch.randn(300, 64, generator=generator))
    torch.set_float32_matmul_precision('highest')
    exact = a @ b
    torch.set_float32_matmul_precision('high')
    assert torch.equal(a @ b, exact)


@pytest.mark.parametrize('config', [
    'td-hm_sharpose-b-a0.4_4xb64-210e_coco-256x192.py',
    'td-hm_sharpose-b-a0.3_4xb64-210e_coco-384x288.py',
    'td-hm_sharpose-s-a0.5_4xb128-250e_coco-256x192.py',
    'td-hm_sharpose-b-a0.4_4xb64-210e_mpii-256x192.py',
])
def test_sharpose_gpu_recipes_feed_their_batches(config):
    """8 workers with pinned memory per GPU (reasoning in docs/gpu.md);
    the CPU quickstart keeps one worker and no pinned memory."""
    cfg = Config.fromfile(REPO / 'configs/sharpose' / config)
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        assert loader.num_workers == 8 and loader.pin_memory is True
    quickstart = Config.fromfile(
        REPO / 'configs/sharpose/td-hm_sharpose-s-a0.5_2xb8-12e_synthetic-'
        '128x96.py')
    for loader in (quickstart.train_dataloader, quickstart.val_dataloader):
        assert loader.num_workers == 1 and loader.pin_memory is False


# --- 8. detection on GPU machines -------------------------------------------


def test_missing_nms_points_to_the_build_and_the_no_build_paths():
    """MMPoseInferencer's detector calls mmcv's NMS; with mmcv-lite the
    error names the documented build and the paths that need none."""
    import mmcv._ext
    from mmcv.ops import nms
    boxes, scores = torch.rand(4, 4) * 10, torch.rand(4)
    if getattr(mmcv._ext, '__file__', None):
        # Full mmcv (compiled ops) is used as it is.
        nms(boxes, scores, 0.5)
        return
    with pytest.raises(RuntimeError) as error:
        nms(boxes, scores, 0.5)
    message = str(error.value)
    assert 'docs/gpu.md ("Detection on GPU machines")' in message
    assert '--det-file' in message and 'whole image' in message
    assert '## Detection on GPU machines' in (REPO / 'docs/gpu.md').read_text()
