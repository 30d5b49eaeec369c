"""Any keypoint count: every family built, trained and converted with K=16
and K=21 (top-down ones and the bottom-up HigherPose), and fine-tuning from
a checkpoint with another keypoint count."""
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Tuple

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmpose.registry import MODELS
from mmpose.testing import get_packed_inputs

from sspose_mm.apis.convert import convert_state_dict
from sspose_mm.apis.loading import load_for_transfer
from sspose_mm.cli.checks import check_keypoint_count
from sspose_mm.errors import CheckpointError
from sspose_mm.utils import drop_reinitialised_keys
from conftest import GOLDEN, REPO
from test_higherpose_model import training_sample
from test_transpose_parity import refweights

KEYPOINT_COUNTS = (16, 21)


def heatmap_head_keypoints(cfg: Config, num_keypoints: int) -> None:
    """Top-down heatmap families: the head's ``out_channels``."""
    cfg.model.head.out_channels = num_keypoints


def sharpose_keypoints(cfg: Config, num_keypoints: int) -> None:
    """SHaRPose: its keypoint tokens, output maps, and the OKS sigmas of a
    layout with that many keypoints (its quality loss needs them)."""
    layouts = {16: 'mpii.py', 21: 'humanart21.py'}
    cfg.model.backbone.num_keypoints = num_keypoints
    cfg.model.head.out_channels = num_keypoints
    cfg.model.head.metainfo = dict(
        from_file=f'configs/_base_/datasets/{layouts[num_keypoints]}')


def bottomup_keypoints(cfg: Config, num_keypoints: int) -> None:
    """HigherPose: the head's keypoint count and its grouping order, which
    MMPose's associative-embedding grouping needs with one entry per
    keypoint (for a real layout: head and torso first)."""
    cfg.model.head.num_keypoints = num_keypoints
    cfg.model.head.decoder.decode_keypoint_order = list(range(num_keypoints))


@dataclass
class KeypointFamily:
    """How to build one family with K keypoints (extend FAMILIES when a
    family lands: its config, how K is set, a small input that fits)."""
    name: str
    config: str
    set_keypoints: Callable[[Config, int], None]
    input_size: Tuple[int, int]  # (w, h)


FAMILIES = [
    KeypointFamily(
        'transpose-r-a3', 'configs/transpose/'
        'td-hm_transpose-r-a3_1xb28-230e_coco-256x192.py',
        heatmap_head_keypoints, (32, 32)),
    KeypointFamily(
        'transpose-h-s', 'configs/transpose/'
        'td-hm_transpose-h-s_2xb16-240e_coco-256x192.py',
        heatmap_head_keypoints, (32, 32)),
    KeypointFamily(
        'sspose-t', 'configs/sspose/'
        'td-hm_sspose-t_1xb8-10e_synthetic-128x96.py', heatmap_head_keypoints,
        (96, 128)),
    KeypointFamily(
        'sharpose-s', 'configs/sharpose/'
        'td-hm_sharpose-s-a0.5_2xb8-12e_synthetic-128x96.py',
        sharpose_keypoints, (96, 128)),
]
# Bottom-up families: whole images in, grouped people out.
BOTTOM_UP_FAMILIES = [
    KeypointFamily(
        'higherpose', 'configs/higherpose/'
        'ae_higherpose-w32_1xb12-300e_coco-256x256.py', bottomup_keypoints,
        (64, 64)),
]


def build(family: KeypointFamily, num_keypoints: int):
    cfg = Config.fromfile(str(REPO / family.config))
    family.set_keypoints(cfg, num_keypoints)
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)  # PyTorch's default initialisation, seeded
    return MODELS.build(cfg.model)


@lru_cache(maxsize=None)
def initial_state(family_index: int, num_keypoints: int) -> dict:
    return build(FAMILIES[family_index], num_keypoints).state_dict()


def state_dict(family_index: int, num_keypoints: int) -> dict:
    """A fresh copy of the family's seeded initial weights."""
    return dict(initial_state(family_index, num_keypoints))


@pytest.mark.parametrize('num_keypoints', KEYPOINT_COUNTS)
@pytest.mark.parametrize('family', FAMILIES, ids=lambda f: f.name)
def test_family_trains_and_predicts_any_keypoint_count(family, num_keypoints):
    model = build(family, num_keypoints)
    w, h = family.input_size
    heatmaps = model.head.forward(model.extract_feat(torch.zeros(1, 3, h, w)))
    assert heatmaps.shape[1] == num_keypoints
    heatmap_size = tuple(heatmaps.shape[-1:-3:-1])
    packed = get_packed_inputs(
        batch_size=2,
        num_keypoints=num_keypoints,
        img_shape=(h, w),
        input_size=(w, h),
        heatmap_size=heatmap_size,
        with_reg_label=False,
        with_simcc_label=False)
    data = model.data_preprocessor(packed, training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    data = model.data_preprocessor(packed, training=False)
    with torch.no_grad():
        results = model.predict(data['inputs'], data['data_samples'])
    assert results[0].pred_instances.keypoints.shape == (1, num_keypoints, 2)


@pytest.mark.parametrize('num_keypoints', KEYPOINT_COUNTS)
@pytest.mark.parametrize('family', BOTTOM_UP_FAMILIES, ids=lambda f: f.name)
def test_bottom_up_family_trains_and_predicts_any_keypoint_count(
        family, num_keypoints):
    model = build(family, num_keypoints)
    w, h = family.input_size
    heatmaps, tags = model.head.forward(
        model.extract_feat(torch.zeros(1, 3, h, w)))
    assert heatmaps.shape[1] == tags.shape[1] == num_keypoints
    # Two-resolution targets and tag indices of two people per image, as
    # the family's training pipeline makes them.
    samples = [training_sample(num_keypoints, size=w) for _ in range(2)]
    losses = model.loss(torch.randn(2, 3, h, w), samples)
    assert set(losses) == {
        'loss_kpt', 'loss_kpt_highres', 'loss_pull', 'loss_push'
    }
    assert all(torch.isfinite(v) for v in losses.values())

    # Untrained heatmaps may lie below the recipe's detection threshold
    # everywhere: with every candidate kept, grouping over the K keypoints
    # runs and gives people. MMPose's filling of missing keypoints averages
    # the tags of a person's keypoints with a score above 0 and fails when
    # there is none, so the untrained heatmaps are lifted above 0.
    model.head.decoder.decode_keypoint_thr = -np.inf
    with torch.no_grad():
        model.head.final_layer.bias[:num_keypoints] += 10.
        model.head.highres_final_layer.bias += 10.
    model.eval()
    np.random.seed(0)
    packed = get_packed_inputs(
        batch_size=1,
        num_keypoints=num_keypoints,
        img_shape=(h, w),
        input_size=(w, h),
        with_heatmap=False,
        with_reg_label=False,
        with_simcc_label=False)
    data = model.data_preprocessor(packed, training=False)
    with torch.no_grad():
        results = model.predict(data['inputs'], data['data_samples'])
    people = results[0].pred_instances
    assert len(people) >= 1
    assert people.keypoints.shape[1:] == (num_keypoints, 2)
    assert people.keypoint_scores.shape == (len(people), num_keypoints)


@pytest.mark.parametrize('num_keypoints', KEYPOINT_COUNTS)
def test_transpose_converter_keeps_any_keypoint_count(num_keypoints):
    """An official-layout TransPose checkpoint with K output maps converts
    and loads strictly into the model built for K keypoints."""
    manifest = json.loads(
        (GOLDEN / 'transpose/transpose-r-a3.manifest.json').read_text())
    entries = []
    for entry in manifest['keys']:
        if entry['key'].startswith('final_layer.'):
            entry = dict(entry, shape=[num_keypoints] + entry['shape'][1:])
        entries.append(entry)
    golden = np.load(GOLDEN / 'transpose/transpose-r-a3_seed0.npz')
    official = refweights().reference_state_dict(
        entries,
        seed=0,
        fixed={'pos_embedding': golden['fixed/pos_embedding']})
    official = {k: torch.from_numpy(v) for k, v in official.items()}
    converted, layout, _ = convert_state_dict(official)
    assert layout.startswith('transpose')
    model = build(FAMILIES[0], num_keypoints)
    model.load_state_dict(converted, strict=True)
    assert torch.equal(model.head.final_layer.weight,
                       official['final_layer.weight'])


def test_drop_reinitialised_keys_names_each_key_with_both_shapes():
    coco, mpii = state_dict(0, 17), state_dict(0, 16)
    dropped = drop_reinitialised_keys(coco, mpii, ['head.final_layer'])
    assert dropped == [
        'head.final_layer.bias ((17,) -> (16,))',
        'head.final_layer.weight ((17, 256, 1, 1) -> (16, 256, 1, 1))'
    ]
    assert set(coco) == set(mpii) - {
        'head.final_layer.weight', 'head.final_layer.bias'
    }


def test_mismatch_outside_the_allowed_layers_is_refused():
    """An -H checkpoint into an -R model must not load half-way."""
    other, model = state_dict(1, 17), state_dict(0, 16)
    with pytest.raises(CheckpointError, match='do not fit the model'):
        drop_reinitialised_keys(other, model, ['head.final_layer'])
    partial = state_dict(0, 17)
    del partial['neck.layers.2.linear2.weight']
    with pytest.raises(
            CheckpointError, match='lacks 1 weights .*neck.layers.2.linear2'):
        drop_reinitialised_keys(partial, model, ['head.final_layer'])
    # Without permission to re-initialise, even the head is refused.
    with pytest.raises(
            CheckpointError,
            match=r'head.final_layer.weight '
            r'\(17, 256, 1, 1\) vs \(16, 256, 1, 1\)'):
        drop_reinitialised_keys(state_dict(0, 17), model, [])


@pytest.mark.parametrize('num_keypoints', KEYPOINT_COUNTS)
def test_load_for_transfer_keeps_every_other_weight(num_keypoints, tmp_path):
    coco = build(FAMILIES[0], 17)
    path = tmp_path / 'coco.pth'
    torch.save({'state_dict': coco.state_dict()}, path)
    model = build(FAMILIES[0], num_keypoints)
    fresh = model.head.final_layer.weight.detach().clone()
    dropped = load_for_transfer(model, str(path))
    assert [d.split(' ')[0] for d in dropped
            ] == ['head.final_layer.bias', 'head.final_layer.weight']
    for key, value in coco.state_dict().items():
        if not key.startswith('head.final_layer'):
            assert torch.equal(model.state_dict()[key], value), key
    assert torch.equal(model.head.final_layer.weight, fresh)


def test_keypoint_count_check_accepts_the_mpii_fine_tune_config():
    name = 'td-hm_transpose-r-a4_1xb20-100e_mpii-256x256.py'
    cfg = Config.fromfile(str(REPO / 'configs/transpose' / name))
    for phase in ('train', 'val'):
        check_keypoint_count(cfg, cfg[f'{phase}_dataloader'].dataset, phase)
    assert cfg.model.head.out_channels == 16
    assert any(h.type == 'KeypointTransferHook' for h in cfg.custom_hooks)
