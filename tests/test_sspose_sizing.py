"""The SSpose-B pose config meets both published figures (the official
README: 49.5M parameters, 122.5 GFLOPs at 256x192), with GFLOPs counted as
2 x multiply-adds (docs/sspose.md, "Parameters and FLOPs").

FLOPs are counted with the package's counter
(:func:`sspose_mm.benchmarks.core.count_flops`, ``torch.utils.flop_counter``:
convolutions incl. transposed, matrix products and attention; 2 FLOPs per
multiply-add) on the meta device, where the forward computes shapes only:
the same count as on real tensors (checked below on a small model), in a
fraction of a second instead of the seconds of a CPU forward at 256x192.
"""
import torch
from mmengine.config import Config
from mmpose.registry import MODELS

from sspose_mm.benchmarks.core import count_flops
from conftest import REPO

CONFIGS = REPO / 'configs/sspose'
POSE_CONFIG = CONFIGS / 'td-hm_sspose-b_8xb64-210e_coco-256x192.py'
QUICKSTART = CONFIGS / 'td-hm_sspose-t_1xb8-10e_synthetic-128x96.py'
PUBLISHED_PARAMS = 49.5e6
PUBLISHED_FLOPS = 122.5e9
# The pose architecture is not released (docs/sspose.md): its widths are
# chosen to fit both figures within the 2% the issue asks for (three free
# widths could fit two numbers arbitrarily closely, so a closer fit would
# carry no evidence). The config measures -1.3% and -1.6%.
TOLERANCE = 0.02


def build(path, img_size=None) -> torch.nn.Module:
    cfg = Config.fromfile(path)
    cfg.model.backbone.init_cfg = None  # no pretraining file needed
    if img_size is not None:
        cfg.model.backbone.img_size = img_size
    return MODELS.build(cfg.model).eval()


def forward_flops(model: torch.nn.Module, size) -> tuple:
    """FLOPs (2 per multiply-add) and heatmap shape of one image."""
    device = next(model.parameters()).device
    images = torch.zeros(1, 3, *size, device=device)
    output = []
    with torch.no_grad():
        flops = count_flops(
            lambda: output.append(model(images, None, mode='tensor')))
    return flops, tuple(output[0].shape)


def test_meta_device_counts_what_real_tensors_count():
    model = build(QUICKSTART, img_size=(64, 48))
    real = forward_flops(model, (64, 48))
    meta = forward_flops(model.to('meta'), (64, 48))
    assert meta == real and real[0] > 0


def test_pose_config_has_both_published_figures():
    model = build(POSE_CONFIG)
    params = sum(p.numel() for p in model.parameters())
    assert abs(params / PUBLISHED_PARAMS - 1) <= TOLERANCE, params
    flops, heatmaps = forward_flops(model.to('meta'), (256, 192))
    assert abs(flops / PUBLISHED_FLOPS - 1) <= TOLERANCE, flops
    # The figure's architecture: strides 2/4/8 (H/8 x W/8 tokens), 11
    # transformer layers, heatmaps at a quarter of the input.
    assert model.backbone.grid == (32, 24)
    assert len(model.backbone.layers) == 11
    assert heatmaps == (1, 17, 64, 48)
