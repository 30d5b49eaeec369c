"""TransPose's attention figure: where each predicted keypoint looks.

One top-down forward pass over one person crop gives the predicted
keypoints and the attention maps of every encoder layer; the figure shows,
per layer (row) and keypoint (column), the map of the token under the
keypoint over the crop (the paper's Fig. 1/5). Models with keypoint tokens
of their own (SHaRPose) show each keypoint token's attention over the
patches instead; their backbone's ``keypoint_attention_layout`` says where
those tokens and the patches sit in the maps.
"""
import os.path as osp
from contextlib import ExitStack
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.dataset import pseudo_collate
from mmengine.utils import mkdir_or_exist
from mmpose.datasets.transforms import TopdownAffine
from mmpose.structures.bbox import get_udp_warp_matrix, get_warp_matrix

from ..datasets.transforms import TransPoseAffine
from ..errors import ConfigError
from .attention import recording_attention
from .infer import BoxedPoseInferencer, check_bbox, read_image

MODES = ('dependency', 'affect')


def _crop_warp(affine: TopdownAffine, meta: dict) -> np.ndarray:
    """The ``(2, 3)`` image -> crop warp ``affine`` applied, rebuilt from the
    sample's ``input_center/input_scale``."""
    center = np.asarray(meta['input_center'], dtype=np.float32)
    scale = np.asarray(meta['input_scale'], dtype=np.float32)
    if isinstance(affine, TransPoseAffine):
        return affine.warp_matrix(center, float(scale[0]) + 1)
    warp_fn = get_udp_warp_matrix if affine.use_udp else get_warp_matrix
    return warp_fn(center, scale, 0., affine.input_size)


def read_person(image_path: str,
                bbox_xywh: Optional[Sequence[float]] = None
                ) -> Tuple[np.ndarray, np.ndarray]:
    """The image (BGR) and the ``(1, 4)`` xyxy box of one person, by default
    the whole image; stops at a missing or undecodable image and a bad box.
    """
    if not osp.isfile(image_path):
        raise ConfigError(f'image "{image_path}" does not exist.')
    image = read_image(image_path)
    img_h, img_w = image.shape[:2]
    if bbox_xywh is None:
        bbox_xywh = (0, 0, img_w, img_h)
    return image, check_bbox(bbox_xywh, (img_h, img_w), image_path)


def attention_for_crop(model: torch.nn.Module,
                       image_path: str,
                       bbox_xywh: Optional[Sequence[float]] = None) -> dict:
    """Predict one person (``bbox_xywh`` in image pixels, default the whole
    image) and record the attention of the same forward pass.

    The crop is made by the config's test pipeline and the prediction by
    ``model.test_step``, flip test included when configured: the queries are
    the model's test-time predictions. The flipped pass runs second
    (``TopdownPoseEstimator.predict``), so its maps are dropped.

    Returns:
        dict:
        - ``crop``: ``(H, W, 3)`` uint8 RGB network input (de-normalised).
        - ``keypoints``, ``keypoints_in_crop``: ``(K, 2)`` predictions in
          the image and in crop pixels (pixel centres at integers, as
          ``imshow`` draws them); ``scores``: ``(K,)``.
        - ``maps``: one ``(N, N)`` float32 head-averaged post-softmax map per
          encoder layer; row ``q`` is what token ``q`` attends to (rows sum
          to 1). ``N = h * w`` row-major tokens, or for a model with
          keypoint tokens its whole sequence.
        - ``feature_size``: ``(h, w)`` grid of the image tokens.
        - ``stride``: crop pixels per token, ``W / w``.
        - ``query_cells``: ``(K, 2)`` int ``(col, row)`` token of each
          keypoint, ``int(x / stride)``, clipped to the grid.
        - ``query_tokens``: ``(K,)`` the token each keypoint's map is the row
          (column) of: the token of its cell, or its own keypoint token.
        - ``patch_tokens``: ``(start, stop)`` of the ``h * w`` image tokens
          in the maps' sequence.
        - ``bbox_xyxy``: ``(4,)`` the box used.

    Raises:
        ConfigError: Missing image, bad box, or a model without attention.
        DataError: An image that does not decode.
    """
    image, bbox = read_person(image_path, bbox_xywh)
    inferencer = BoxedPoseInferencer(model)
    # TopdownAffine or a subclass: the warp of the crop.
    affine = next((step for step in inferencer.pipeline.transforms
                   if isinstance(step, TopdownAffine)), None)
    if affine is None:
        raise ConfigError('the test pipeline has no TopdownAffine step: the '
                          'attention figure needs a top-down crop.')
    batch = pseudo_collate(
        inferencer.preprocess_single(image, 0, image_path, bbox))

    with ExitStack() as stack:
        try:
            maps = stack.enter_context(recording_attention(model))
        except ValueError as error:
            raise ConfigError(
                f'{error} The attention figure needs a model with '
                'self-attention layers (e.g. a TransPose config).') from error
        stack.enter_context(torch.no_grad())
        sample = model.test_step(batch)[0]

    crop_bgr = batch['inputs'][0].permute(1, 2, 0).cpu().numpy()
    crop = np.ascontiguousarray(crop_bgr[..., ::-1])
    H, W = crop.shape[:2]
    layout = getattr(model.backbone, 'keypoint_attention_layout', None)
    if layout is None:
        passes = 2 if model.test_cfg.get('flip_test', False) else 1
        if not maps or len(maps) % passes:
            raise RuntimeError(f'{len(maps)} attention maps recorded for '
                               f'{passes} forward passes.')
        maps = maps[:len(maps) // passes]
        num_tokens = maps[0].shape[-1]
        # Tokens tile the crop: stride = sqrt(H * W / N) (8 for -R, 4 -H).
        stride = float(np.sqrt(H * W / num_tokens))
        h, w = int(round(H / stride)), int(round(W / stride))
        if h * w != num_tokens:
            raise RuntimeError(f'{num_tokens} tokens do not tile a {W}x{H} '
                               'crop with one stride.')
        patch_tokens = (0, num_tokens)
    else:
        # The shown crop's pass runs first, and within it the maps the
        # layout names (e.g. SHaRPose's coarse pass) come first.
        maps = maps[:layout['num_maps']]
        h, w = layout['grid']
        patch_tokens = tuple(layout['patch_tokens'])
    maps = [m[0].float().cpu().numpy() for m in maps]
    stride = W / w

    warp = _crop_warp(affine, sample.metainfo)
    keypoints = np.asarray(
        sample.pred_instances.keypoints[0], dtype=np.float64)
    in_crop = keypoints @ warp[:, :2].T + warp[:, 2]
    cells = np.clip((in_crop / stride).astype(int), 0, [w - 1, h - 1])
    query_tokens = (
        patch_tokens[0] + cells[:, 1] * w +
        cells[:, 0] if layout is None else np.asarray(layout['query_tokens']))
    return dict(
        crop=crop,
        keypoints=keypoints.astype(np.float32),
        keypoints_in_crop=in_crop.astype(np.float32),
        scores=np.asarray(
            sample.pred_instances.keypoint_scores[0], dtype=np.float32),
        maps=maps,
        feature_size=(h, w),
        stride=stride,
        query_cells=cells,
        query_tokens=query_tokens,
        patch_tokens=patch_tokens,
        bbox_xyxy=bbox[0])


def query_maps(result: dict,
               layer: int,
               mode: str = 'dependency',
               threshold: Optional[float] = None) -> np.ndarray:
    """``(K, H, W)`` float32 per-keypoint maps of one ``layer`` of a
    :func:`attention_for_crop` result, upsampled to the crop.

    ``mode`` ``'dependency'`` takes row ``A[q, patches]`` (what the
    keypoint's token attends to), ``'affect'`` column ``A[patches, q]`` (how
    much every image token attends to it). Upsampled values ``<= threshold``
    (raw probabilities; uniform is ``1 / N``) become 0.
    """
    if mode not in MODES:
        raise ConfigError(f'mode "{mode}" is not one of {", ".join(MODES)}.')
    h, w = result['feature_size']
    H, W = result['crop'].shape[:2]
    att = result['maps'][layer]
    # 'affect': the columns A[patches, q], as rows of the transpose.
    att = att.T if mode == 'affect' else att
    picked = att[result['query_tokens'], slice(*result['patch_tokens'])]
    # Bilinear as upstream's F.interpolate(scale_factor=down_rate).
    up = F.interpolate(
        torch.from_numpy(np.ascontiguousarray(picked)).reshape(-1, 1, h, w),
        size=(H, W),
        mode='bilinear',
        align_corners=False)[:, 0].numpy()
    if threshold is not None:
        up[up <= threshold] = 0
    return up


def short_keypoint_name(name: str) -> str:
    """``'left_shoulder'`` -> ``'sho. (l)'``: fits a narrow column title."""
    side = ''
    if name.startswith(('left_', 'right_')):
        side, name = f' ({name[0]})', name.split('_', 1)[1]
    name = name.replace('_', ' ')
    return (name[:4] + '.' if len(name) > 5 else name) + side


# Figure layout, in inches: fixed margins make the saved size predictable
# (no bbox_inches='tight'), which the tests and users' layouts rely on.
PANEL_WIDTH = 1.25
GAP = 0.06
MARGIN_LEFT = 0.45
MARGIN_RIGHT = 0.95  # colour bar and its label
MARGIN_TOP = 0.75  # figure title and column titles
MARGIN_BOTTOM = 0.15
# Keypoint dots, the star of a panel's keypoint, and its peak value.
DOT = dict(s=9, edgecolors='k', linewidths=0.3, zorder=3)
STAR = dict(
    marker='*', s=70, c='white', edgecolors='k', linewidths=0.4, zorder=3)
PEAK = dict(fontsize=6.5, color='white', va='bottom')


def figure_inches(num_rows: int, num_cols: int,
                  crop_hw: Tuple[int, int]) -> Tuple[float, float]:
    """``(width, height)`` of the figure for a grid of crop-shaped panels."""
    panel_h = PANEL_WIDTH * crop_hw[0] / crop_hw[1]
    width = (
        MARGIN_LEFT + num_cols * PANEL_WIDTH + (num_cols - 1) * GAP +
        MARGIN_RIGHT)
    height = (
        MARGIN_TOP + num_rows * panel_h + (num_rows - 1) * GAP + MARGIN_BOTTOM)
    return width, height


def _rgb01(colors, index) -> np.ndarray:
    """Colour(s) ``index`` of a dataset_meta palette (RGB 0-255, cycled) in
    matplotlib's 0-1."""
    color = np.asarray(colors, dtype=np.float64).reshape(-1, 3)
    return color[np.asarray(index) % len(color)] / 255.


def draw_attention_figure(result: dict,
                          dataset_meta: Dict,
                          mode: str = 'dependency',
                          threshold: float = 0.,
                          layers: Optional[Sequence[int]] = None,
                          out_file: str = 'attention.png',
                          dpi: int = 100,
                          title: Optional[str] = None) -> str:
    """Save the paper's attention figure of a :func:`attention_for_crop`
    result to ``out_file`` (folders created) and return its path.

    Rows are encoder ``layers`` (default all); column 0 is the crop with the
    predicted skeleton, then per keypoint the crop under the layer's map
    (:func:`query_maps`) of the token at that keypoint (white star). Each
    map is scaled to its own maximum (printed in the panel) as maxima differ
    by orders of magnitude; one colour bar serves all panels. Raw values
    ``<= threshold`` are drawn black.

    Raises:
        ConfigError: A layer index out of range or an unknown mode.
    """
    # A bare Figure renders with Agg and touches neither pyplot's global
    # state nor the backend of a caller's session (e.g. a notebook).
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    num_layers = len(result['maps'])
    layers = list(range(num_layers)) if layers is None else list(layers)
    if not layers:
        raise ConfigError('--layers needs at least one layer index.')
    bad = [i for i in layers if not 0 <= i < num_layers]
    if bad:
        raise ConfigError(f'--layers {" ".join(map(str, bad))}: the model '
                          f'has {num_layers} encoder layers (0 to '
                          f'{num_layers - 1}).')

    crop = result['crop']
    H, W = crop.shape[:2]
    kpts = result['keypoints_in_crop']
    K = len(kpts)
    id2name = dataset_meta.get('keypoint_id2name', {})
    names = [short_keypoint_name(id2name.get(k, str(k))) for k in range(K)]
    fig_w, fig_h = figure_inches(len(layers), K + 1, (H, W))
    panel_h = PANEL_WIDTH * H / W
    fig = Figure(figsize=(fig_w, fig_h), dpi=dpi)

    def panel(row: int, col: int, title: str):
        left = MARGIN_LEFT + col * (PANEL_WIDTH + GAP)
        top = MARGIN_TOP + row * (panel_h + GAP)
        ax = fig.add_axes([
            left / fig_w, 1 - (top + panel_h) / fig_h, PANEL_WIDTH / fig_w,
            panel_h / fig_h
        ])
        ax.set_xticks([])
        ax.set_yticks([])
        ax.imshow(crop)
        # Fixed now, so that points drawn off the crop do not widen them.
        ax.set_xlim(-0.5, W - 0.5)
        ax.set_ylim(H - 0.5, -0.5)
        if row == 0:
            ax.set_title(title, fontsize=10)
        return ax

    norm = Normalize(0., 1.)
    image = None
    colors = _rgb01(
        dataset_meta.get('keypoint_colors', [[255] * 3]), np.arange(K))
    link_colors = dataset_meta.get('skeleton_link_colors')
    for row, layer in enumerate(layers):
        ax = panel(row, 0, 'prediction')
        for link, (a, b) in enumerate(dataset_meta.get('skeleton_links', [])):
            ax.plot(*kpts[[a, b]].T, lw=1.5, color=_rgb01(link_colors, link))
        ax.scatter(*kpts.T, c=colors, **DOT)
        ax.set_ylabel(f'layer {layer}', fontsize=11)

        maps = query_maps(result, layer, mode)
        for k in range(K):
            ax = panel(row, k + 1, names[k])
            # The peak before thresholding: a panel whose whole map is cut
            # away stays black but still tells how weak it was.
            peak = float(maps[k].max())
            shown = np.where(maps[k] > threshold, maps[k], 0.)
            shown = shown / peak if peak > 0 else shown
            image = ax.imshow(
                shown, cmap='nipy_spectral', norm=norm, alpha=0.8)
            ax.scatter([kpts[k, 0]], [kpts[k, 1]], **STAR)
            peak_text = f'max {peak:.2g}'
            ax.text(0.03, 0.02, peak_text, transform=ax.transAxes, **PEAK)

    cax = fig.add_axes([(fig_w - MARGIN_RIGHT + 0.2) / fig_w,
                        MARGIN_BOTTOM / fig_h, 0.15 / fig_w,
                        (fig_h - MARGIN_TOP - MARGIN_BOTTOM) / fig_h])
    bar = fig.colorbar(image, cax=cax, ticks=[0, 0.5, 1])
    bar.set_label('attention / panel max', fontsize=9)
    h, w = result['feature_size']
    what = ('what the keypoint attends to (row of A)' if mode == 'dependency'
            else 'how much each location attends to the keypoint (column '
            'of A)')
    fig.suptitle(
        title or f'{mode}: {what}; {h}x{w} tokens, stride '
        f'{result["stride"]:g}; values <= {threshold:g} hidden',
        x=MARGIN_LEFT / fig_w,
        ha='left',
        y=1 - 0.12 / fig_h,
        va='top',
        fontsize=11)
    mkdir_or_exist(osp.dirname(osp.abspath(out_file)))
    fig.savefig(out_file, dpi=dpi)
    return out_file
