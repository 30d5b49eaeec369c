"""ONNX export of top-down heatmap models, checked with onnxruntime (the
API of ``tools/export_onnx.py``)."""
import os.path as osp
import re
from traceback import format_exception
from typing import List, Optional, Tuple

import numpy as np
import torch
from mmengine import mkdir_or_exist
from mmpose.registry import KEYPOINT_CODECS
from torch import Tensor, nn

from ..errors import ConfigError
from .fast_inference import prepare_for_inference

# Share of the largest |heatmap| the onnxruntime result may differ by:
# onnxruntime fuses and reorders float32 sums differently (differences of
# about 1e-6 are seen); a wrong export differs by the heatmaps' own scale.
RELATIVE_TOLERANCE = 1e-4


def codec_grid_mapping(codec, heatmap_size: Tuple[int, int]) -> tuple:
    """``(sx, sy)`` crop pixels per heatmap pixel and ``(ox, oy)``, the crop
    position of heatmap pixel 0, of the codec's mapping.

    Decodes symmetric Gaussian bumps at two grid points and fits the affine
    map. Any sub-pixel refinement is zero there by symmetry, provided the
    codec's blur (if any) does not reach the zero padding beyond the border
    from the refinement's stencil: hence the 3-pixel blur (``codec`` is
    built with it) and points 3 pixels inside.
    """
    height, width = heatmap_size
    if min(height, width) < 8:
        raise ConfigError(f'--with-decode needs heatmaps of at least 8x8, '
                          f'got {height}x{width}: export a larger --input.')
    points = np.array([(3, 3), (width - 4, height - 4)])
    ys, xs = np.mgrid[:height, :width]
    decoded = []
    for x, y in points:
        bump = np.exp(-((xs - x)**2 + (ys - y)**2) / 8.).astype(np.float32)
        keypoints, _ = codec.decode(bump[None])
        decoded.append(np.asarray(keypoints, np.float64).reshape(-1)[:2])
    scale = (decoded[1] - decoded[0]) / (points[1] - points[0])
    offset = decoded[0] - scale * points[0]
    return tuple(map(float, scale)), tuple(map(float, offset))


class ExportedPoseModel(nn.Module):
    """What is exported: crops ``(B, 3, H, W)`` in, heatmaps ``(B, K, H',
    W')`` out; with ``grid`` (:func:`codec_grid_mapping`) also argmax
    keypoints ``(B, K, 2)`` in crop pixels and their scores (the heatmap
    maxima) ``(B, K)``.

    Unlike the codecs, no sub-pixel refinement (DARK's Taylor step needs a
    blur and a log per keypoint, numpy code that ONNX runtimes do not all
    have): keypoints lie on the heatmap grid, up to half a heatmap pixel
    from the PyTorch decoder's. The grid-to-crop mapping is the codec's own.
    """

    def __init__(self, model: nn.Module, grid: Optional[tuple] = None) -> None:
        super().__init__()
        self.model = model
        self.decodes = grid is not None
        if self.decodes:
            self.register_buffer('scale', torch.tensor(grid[0]))
            self.register_buffer('offset', torch.tensor(grid[1]))

    def forward(self, crops: Tensor):
        heatmaps = self.model(crops, None, mode='tensor')
        if not self.decodes:
            return heatmaps
        width = heatmaps.shape[-1]
        scores, index = heatmaps.flatten(2).max(dim=-1)
        grid = torch.stack((index % width, index // width), dim=-1)
        keypoints = grid.to(heatmaps.dtype) * self.scale + self.offset
        return heatmaps, keypoints, scores


def build_exported(model: nn.Module, size: Tuple[int, int],
                   with_decode: bool) -> ExportedPoseModel:
    """The model prepared for ``(H, W)`` crops, decoding if asked."""
    prepare_for_inference(model, size, fold_bn=True, channels_last=False)
    with torch.no_grad():
        heatmaps = model(torch.zeros(1, 3, *size), None, mode='tensor')
    if not isinstance(heatmaps, Tensor):
        raise ConfigError(
            f'{type(model).__name__} gives a {type(heatmaps).__name__} in '
            'tensor mode, not one heatmap tensor: export is for top-down '
            'heatmap models (TransPose, SSpose), not bottom-up ones.')
    grid = None
    if with_decode:
        codec_cfg = model.cfg.model.get('head', {}).get('decoder')
        if codec_cfg is None:
            raise ConfigError('--with-decode needs a head with a codec '
                              '(model.head.decoder in the config).')
        # The codec's mapping for the exported size, not the config's.
        heatmap_size = tuple(heatmaps.shape[-2:])
        codec_cfg = dict(
            codec_cfg, input_size=size[::-1], heatmap_size=heatmap_size[::-1])
        if 'blur_kernel_size' in codec_cfg:
            codec_cfg['blur_kernel_size'] = 3  # see codec_grid_mapping
        codec = KEYPOINT_CODECS.build(codec_cfg)
        grid = codec_grid_mapping(codec, heatmap_size)
    return ExportedPoseModel(model, grid).eval()


# How torch.export reports Python control flow on tensor values.
_DATA_DEPENDENT = re.compile(r'GuardOnDataDependentSymNode|data-dependent|'
                             r'data dependent')


def export_onnx(exported: ExportedPoseModel, crops: Tensor, out: str,
                dynamic_batch: bool, opset: int) -> List[str]:
    """Write the ONNX file; returns the output names."""
    outputs = ['heatmaps']
    if exported.decodes:
        outputs += ['keypoints', 'scores']
    dynamic_shapes = None
    if dynamic_batch:
        dynamic_shapes = {'crops': {0: torch.export.Dim('batch')}}
        # torch.export specialises every dimension of size 1 (its value
        # decides broadcasting), so a batch of 1 cannot be traced as
        # dynamic: trace two copies. The graph holds no batch value.
        if len(crops) == 1:
            crops = crops.repeat(2, 1, 1, 1)
    mkdir_or_exist(osp.dirname(osp.abspath(out)))
    try:
        torch.onnx.export(
            exported, (crops, ),
            out,
            input_names=['input'],
            output_names=outputs,
            dynamic_shapes=dynamic_shapes,
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False)
    except Exception as error:  # noqa: BLE001 - re-raised unless explained
        # The reason may be any exception of the chain: search them all.
        if not _DATA_DEPENDENT.search(''.join(format_exception(error))):
            raise
        raise ConfigError(
            f'{type(exported.model.backbone).__name__} decides per crop, '
            'from its values, which computation runs (e.g. SHaRPose\'s '
            'quality gate chooses the crops that get the fine pass); one '
            'static ONNX graph cannot hold that choice.') from error
    return outputs


def verify(session, exported: ExportedPoseModel, crops: Tensor) -> float:
    """Run both on ``crops``; returns the heatmaps' relative difference.
    Raises RuntimeError where the results differ beyond round-off."""
    with torch.no_grad():
        expected = exported(crops)
    expected = expected if isinstance(expected, tuple) else (expected, )
    got = session.run(None, {'input': crops.numpy()})
    heatmaps, reference = got[0], expected[0].numpy()
    scale = float(np.abs(reference).max()) or 1.
    difference = float(np.abs(heatmaps - reference).max()) / scale
    if heatmaps.shape != reference.shape or difference > RELATIVE_TOLERANCE:
        raise RuntimeError(
            f'onnxruntime heatmaps {heatmaps.shape} differ from PyTorch\'s '
            f'{tuple(reference.shape)} by {difference:.2e} of the largest '
            f'value (tolerance {RELATIVE_TOLERANCE:g}).')
    if len(got) == 3:
        # Keypoints must agree except where two heatmap maxima are closer
        # than the heatmaps' own round-off (then either argmax is right).
        flat = np.sort(reference.reshape(*reference.shape[:2], -1), axis=-1)
        tolerance = RELATIVE_TOLERANCE * (float(np.abs(heatmaps).max()) or 1.)
        clear = flat[..., -1] - flat[..., -2] > 2 * tolerance
        same = np.isclose(got[1], expected[1].numpy(), atol=1e-3).all(-1)
        if not np.all(same[clear]) or not np.allclose(
                got[2], expected[2].numpy(), atol=tolerance):
            raise RuntimeError('onnxruntime keypoints or scores differ from '
                               'PyTorch\'s decoding.')
    return difference
