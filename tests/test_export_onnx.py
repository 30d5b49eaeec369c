"""tools/export_onnx.py: the exported graph, run by onnxruntime, gives the
heatmaps of the PyTorch model (unfolded, fused attention) it came from, for
another batch size than the one traced, and decodes keypoints with the
codec's grid mapping."""

import numpy as np
import onnxruntime
import pytest
import torch
from mmpose.apis import init_model

from sspose_mm.benchmarks.core import randomise_norm_statistics
from conftest import QUICKSTART_CONFIG, REPO, run_tool

# onnxruntime fuses and reorders float32 sums (and the export folds the
# norms): round-off of ~1e-6 of the output scale; a wrong graph differs by
# the scale itself (randomised norms, random weights).
TOLERANCE = 1e-4


@pytest.mark.slow
def test_export_dynamic_batch_with_decode(tmp_path):
    """At batch 2, checked here against PyTorch at batch 5. The README's
    command, at the default batch of 1 (torch.export cannot trace a
    dimension of size 1 as dynamic), runs in test_docs_commands.py, where
    the tool itself compares onnxruntime with PyTorch at batches 1 and 2."""
    batch = 2
    model = init_model(str(QUICKSTART_CONFIG), None, device='cpu').eval()
    randomise_norm_statistics(model, seed=5)
    checkpoint = tmp_path / 'model.pth'
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    out = tmp_path / 'model.onnx'
    result = run_tool([
        'tools/export_onnx.py',
        str(QUICKSTART_CONFIG),
        str(checkpoint),
        str(out), '--dynamic-batch', '--with-decode', '--input', '64x48',
        '--repeat', '1', '--batch',
        str(batch)
    ])
    assert result.returncode == 0, result.stderr[-3000:]
    for checked in (batch, batch + 1):
        assert (f'onnxruntime matches PyTorch at batch {checked}:'
                in result.stdout)
    assert 'onnxruntime' in result.stdout and 'crops/s' in result.stdout

    session = onnxruntime.InferenceSession(
        str(out), providers=['CPUExecutionProvider'])
    crops = torch.randn(
        5, 3, 64, 48, generator=torch.Generator().manual_seed(7))
    heatmaps, keypoints, scores = session.run(None, {'input': crops.numpy()})
    with torch.no_grad():
        expected = model(crops, None, mode='tensor').numpy()
    assert heatmaps.shape == expected.shape == (5, 17, 16, 12)
    scale = np.abs(expected).max()
    assert np.abs(heatmaps - expected).max() < TOLERANCE * scale

    # TransPoseHeatmap maps heatmap pixel g to g / (size - 1) * input size.
    flat = expected.reshape(5, 17, -1)
    index = flat.argmax(-1)
    grid = np.stack((index % 12, index // 12), -1).astype(np.float32)
    want = grid / [11, 15] * [48, 64]
    top2 = np.sort(flat, -1)[..., -2:]
    clear = top2[..., 1] - top2[..., 0] > 2 * TOLERANCE * scale
    assert clear.mean() > 0.5  # the check below is not vacuous
    np.testing.assert_allclose(keypoints[clear], want[clear], atol=1e-4)
    np.testing.assert_allclose(scores, flat.max(-1), atol=TOLERANCE * scale)


@pytest.mark.slow
def test_export_reports_missing_files(tmp_path):
    result = run_tool([
        'tools/export_onnx.py',
        str(QUICKSTART_CONFIG), 'missing.pth',
        str(tmp_path / 'm.onnx')
    ])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(
        'error: checkpoint "missing.pth" does not exist')
    assert not (tmp_path / 'm.onnx').exists()


@pytest.mark.parametrize(
    'config,says', [
        ('configs/higherpose/ae_higherpose-w32_2xb8-4e_synthetic-128x128.py',
         'error: BottomupPoseEstimator gives a tuple in tensor mode, not one '
         'heatmap tensor'),
        ('configs/sharpose/td-hm_sharpose-s-a0.5_2xb8-12e_synthetic-128x96.py',
         'error: SHaRPoseViT decides per crop, from its values, which '
         'computation runs'),
    ],
    ids=['bottom-up', 'data-dependent gate'])
@pytest.mark.slow
def test_models_a_static_graph_cannot_hold_are_refused_in_one_line(
        config, says, tmp_path):
    out = tmp_path / 'model.onnx'
    result = run_tool(['tools/export_onnx.py', config, 'none', str(out)])
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith(says)
    assert 'Traceback' not in result.stderr
    assert not out.exists()


@pytest.mark.slow
def test_sspose_exports_and_matches(tmp_path):
    """The other top-down family: masked-conv stages (mask of ones at
    inference), transformer with position table, heatmap head."""
    config = str(REPO / 'configs/sspose/'
                 'td-hm_sspose-t_1xb8-10e_synthetic-128x96.py')
    model = init_model(config, None, device='cpu').eval()
    randomise_norm_statistics(model, seed=5)
    checkpoint = tmp_path / 'model.pth'
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    out = tmp_path / 'model.onnx'
    result = run_tool([
        'tools/export_onnx.py', config,
        str(checkpoint),
        str(out), '--repeat', '1'
    ])
    assert result.returncode == 0, result.stderr[-3000:]
    session = onnxruntime.InferenceSession(
        str(out), providers=['CPUExecutionProvider'])
    crops = torch.randn(
        1, 3, 128, 96, generator=torch.Generator().manual_seed(7))
    heatmaps, = session.run(None, {'input': crops.numpy()})
    with torch.no_grad():
        expected = model(crops, None, mode='tensor').numpy()
    assert heatmaps.shape == expected.shape
    assert np.abs(heatmaps -
                  expected).max() < TOLERANCE * np.abs(expected).max()
