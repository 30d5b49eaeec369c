"""The attention figure (issue 3, part 4): API and tools/vis_attention.py.

A freshly initialised quickstart model (3 encoder layers, stride 8: an
``H x W`` input has ``H/8 x W/8`` tokens) on a generated synthetic image; no
trained checkpoint needed.
"""
import json
import struct

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmpose.apis import init_model

from sspose_mm.apis.attention_figure import (attention_for_crop,
                                             draw_attention_figure,
                                             figure_inches, query_maps,
                                             short_keypoint_name)
from sspose_mm.errors import ConfigError
from conftest import QUICKSTART_CONFIG, run_tool

# The quickstart's crop, and its token grid at stride 8.
W, H = Config.fromfile(QUICKSTART_CONFIG).codec.input_size
GW, GH = W // 8, H // 8


def png_size(path) -> tuple:
    """``(width, height)`` from the PNG header."""
    with open(path, 'rb') as f:
        head = f.read(24)
    assert head[:8] == b'\x89PNG\r\n\x1a\n'
    return struct.unpack('>II', head[16:24])


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    from sspose_mm.synthetic import generate_synthetic_coco
    root = tmp_path_factory.mktemp('vis_attention')
    info = generate_synthetic_coco(root, {'val': 2}, seed=0)
    split = info['splits']['val']
    anns = json.loads(split['ann_file'].read_text())
    ann = anns['annotations'][0]
    image = next(i for i in anns['images'] if i['id'] == ann['image_id'])
    torch.manual_seed(0)
    model = init_model(str(QUICKSTART_CONFIG), None, device='cpu')
    checkpoint = root / 'init.pth'
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    return dict(
        root=root,
        model=model,
        checkpoint=checkpoint,
        image=str(split['img_dir'] / image['file_name']),
        image_wh=(image['width'], image['height']),
        bbox=ann['bbox'])


@pytest.fixture(scope='module')
def result(setup):
    return attention_for_crop(setup['model'], setup['image'], setup['bbox'])


def test_maps_shapes_and_row_stochastic(result):
    assert result['crop'].shape == (H, W, 3)
    assert result['crop'].dtype == np.uint8
    assert result['feature_size'] == (GH, GW)
    assert result['stride'] == 8
    # Flip test is on: only the plain pass's 3 layers are kept.
    assert len(result['maps']) == 3
    for att in result['maps']:
        assert att.shape == (GH * GW, GH * GW)
        np.testing.assert_allclose(att.sum(1), 1, atol=1e-4)
        assert (att >= 0).all()
    assert result['keypoints_in_crop'].shape == (17, 2)
    assert result['scores'].shape == (17, )


def test_query_cells_are_the_predicted_keypoints_cells(setup, result):
    """Image-space predictions -> crop via TransPose's crop (the official
    aligned-corner similarity: S_w - 1 box pixels onto w - 1 crop pixels on
    both axes, centre onto ((w - 1)/2, (h - 1)/2)) -> cell."""
    x, y, w, h = setup['bbox']
    # GetBBoxCenterScale(padding=1.25) then the aspect fix of TopdownAffine
    center = np.array([x + w / 2, y + h / 2], dtype=np.float32)
    scale = np.array([w, h], dtype=np.float32) * 1.25
    if scale[0] > scale[1] * W / H:
        scale[1] = scale[0] * H / W
    else:
        scale[0] = scale[1] * W / H
    factor = (W - 1) / (scale[0] - 1)
    warp = np.array([[factor, 0, (W - 1) / 2 - factor * center[0]],
                     [0, factor, (H - 1) / 2 - factor * center[1]]])
    kpts = result['keypoints'].astype(np.float64)
    in_crop = kpts @ warp[:, :2].T + warp[:, 2]
    np.testing.assert_allclose(result['keypoints_in_crop'], in_crop, atol=1e-2)
    cells = np.stack([
        np.clip((in_crop[:, 0] / 8).astype(int), 0, GW - 1),
        np.clip((in_crop[:, 1] / 8).astype(int), 0, GH - 1)
    ], 1)
    np.testing.assert_array_equal(result['query_cells'], cells)


def test_modes_pick_row_or_column(result):
    dep = query_maps(result, 2, 'dependency')
    aff = query_maps(result, 2, 'affect')
    assert dep.shape == aff.shape == (17, H, W)
    assert not np.allclose(dep, aff)
    # Before upsampling: the row / the column of the query token.
    col, row = result['query_cells'][0]
    q = row * GW + col
    att = result['maps'][2]
    small = torch.nn.functional.interpolate(
        torch.from_numpy(att[q].reshape(1, 1, GH, GW)),
        size=(H, W),
        mode='bilinear',
        align_corners=False)[0, 0].numpy()
    np.testing.assert_allclose(dep[0], small, atol=1e-6)
    assert np.isclose(aff[0].mean(), att[:, q].mean(), rtol=0.05)
    # Threshold hides small values only.
    cut = float(np.median(dep[0]))
    thr = query_maps(result, 2, 'dependency', threshold=cut)
    assert (thr[0][dep[0] <= cut] == 0).all()
    assert (thr[0][dep[0] > cut] == dep[0][dep[0] > cut]).all()


def test_bad_boxes_and_models(setup, tmp_path):
    model, image = setup['model'], setup['image']
    img_w, img_h = setup['image_wh']
    with pytest.raises(ConfigError, match='positive'):
        attention_for_crop(model, image, (10, 10, 0, 5))
    with pytest.raises(ConfigError, match='outside the image'):
        attention_for_crop(model, image, (img_w + 5, 10, 20, 20))
    with pytest.raises(ConfigError, match='does not exist'):
        attention_for_crop(model, str(tmp_path / 'none.jpg'))
    # A model without attention: the encoder swapped for nothing.
    plain = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1))
    plain.cfg, plain.dataset_meta = model.cfg, model.dataset_meta
    with pytest.raises(ConfigError, match='self-attention'):
        attention_for_crop(plain, image)
    result = attention_for_crop(model, image, setup['bbox'])
    with pytest.raises(ConfigError, match='3 encoder layers'):
        draw_attention_figure(
            result,
            model.dataset_meta,
            layers=[3],
            out_file=str(tmp_path / 'x.png'))


def test_short_names():
    assert short_keypoint_name('left_shoulder') == 'shou. (l)'
    assert short_keypoint_name('nose') == 'nose'
    assert short_keypoint_name('right_ankle') == 'ankle (r)'


@pytest.mark.slow
def test_cli_whole_image_figure(setup, tmp_path):
    out = tmp_path / 'sub' / 'fig.png'
    proc = run_tool([
        'tools/vis_attention.py',
        str(QUICKSTART_CONFIG),
        str(setup['checkpoint']), setup['image'], '--layers', '0', '2',
        '--mode', 'affect', '--threshold', '0.001', '--device', 'cpu', '--out',
        str(out)
    ],
                    timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f'saved {out}' in proc.stdout
    # Two rows (layers), 1 + 17 columns of H x W panels, 100 dpi.
    fig_w, fig_h = figure_inches(2, 18, (H, W))
    assert png_size(out) == (round(fig_w * 100), round(fig_h * 100))
    three = figure_inches(3, 18, (H, W))
    assert three[1] > fig_h and three[0] == fig_w


@pytest.mark.slow
def test_cli_layer_out_of_range(setup, tmp_path):
    proc = run_tool([
        'tools/vis_attention.py',
        str(QUICKSTART_CONFIG),
        str(setup['checkpoint']), setup['image'], '--bbox',
        *map(str, setup['bbox']), '--layers', '99', '--out',
        str(tmp_path / 'fig.png')
    ],
                    timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: ')
    assert '99' in lines[0] and '3 encoder layers' in lines[0]
    assert not (tmp_path / 'fig.png').exists()


SHARPOSE_CONFIG = ('configs/sharpose/'
                   'td-hm_sharpose-s-a0.5_2xb8-12e_synthetic-128x96.py')


@pytest.fixture(scope='module')
def sharpose(setup):
    """The SHaRPose quickstart model with distinct keypoint tokens (they
    start at zero, which would make every keypoint's map the same)."""
    torch.manual_seed(0)
    model = init_model(SHARPOSE_CONFIG, None, device='cpu')
    with torch.no_grad():
        model.backbone.keypoint_tokens.normal_(std=5.)
    checkpoint = setup['root'] / 'sharpose.pth'
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    return model, checkpoint


def test_keypoint_token_models_show_each_tokens_map_over_the_patches(
        setup, sharpose):
    """SHaRPose: the coarse pass's 12 maps over [quality, 17 keypoints,
    4x3 patches]; keypoint k's panel is row 1 + k over the patch columns,
    laid out row-major on the coarse grid (its peak falls in the cell of
    the row's largest patch value)."""
    model, _ = sharpose
    result = attention_for_crop(model, setup['image'], setup['bbox'])
    assert len(result['maps']) == model.backbone.depth == 12
    assert all(m.shape == (30, 30) for m in result['maps'])
    assert result['feature_size'] == (4, 3) and result['stride'] == 32
    np.testing.assert_array_equal(result['query_tokens'], np.arange(1, 18))
    assert result['patch_tokens'] == (18, 30)
    dependency = query_maps(result, 11, 'dependency')
    assert dependency.shape == (17, 128, 96)
    row_of = result['maps'][11][1:18, 18:]
    assert not np.allclose(row_of[0], row_of[1])
    for k in range(17):
        y, x = np.unravel_index(dependency[k].argmax(), (128, 96))
        assert (y // 32) * 3 + x // 32 == row_of[k].argmax()
    affect = query_maps(result, 11, 'affect')
    assert np.isclose(
        affect[0].mean(), result['maps'][11][18:, 1].mean(), rtol=0.05)


@pytest.mark.slow
def test_cli_figure_of_a_keypoint_token_model(setup, sharpose, tmp_path):
    out = tmp_path / 'sharpose.png'
    proc = run_tool([
        'tools/vis_attention.py', SHARPOSE_CONFIG,
        str(sharpose[1]), setup['image'], '--bbox', *map(str, setup['bbox']),
        '--layers', '0', '11', '--out',
        str(out)
    ],
                    timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    fig_w, fig_h = figure_inches(2, 18, (128, 96))
    assert png_size(out) == (round(fig_w * 100), round(fig_h * 100))


@pytest.mark.slow
def test_cli_refuses_bottom_up_models(setup, tmp_path):
    proc = run_tool([
        'tools/vis_attention.py', 'configs/higherpose/'
        'ae_higherpose-w32_2xb8-4e_synthetic-128x128.py',
        str(setup['checkpoint']), setup['image'], '--out',
        str(tmp_path / 'fig.png')
    ],
                    timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith(
        'error: tools/vis_attention.py is top-down only')
