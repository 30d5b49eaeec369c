"""SHaRPose's official options (replace_oks, qp_abs, qp_type='pck',
loss_distill) and the ablation switches (feature reuse, patch selection),
each checked by a behaviour that the option changes, on tiny random models;
and the ablation lines of docs/sharpose.md, each built and run.

Expected values are recomputed here from the models' parts, from torch's
or MMPose's own functions (cross-entropy, PCK), or by hand, never taken
from a run of the code under test.
"""
import argparse
import copy
import re
import shlex
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.config import Config, DictAction
from mmengine.structures import InstanceData
from mmpose.evaluation.functional import keypoint_pck_accuracy
from mmpose.registry import MODELS
from mmpose.structures import PoseDataSample

from sspose_mm.apis import collect_attention
from sspose_mm.cli.checks import check_cfg_options, check_value_types
from sspose_mm.engine.hooks import SHaRPoseQualityHook
from sspose_mm.errors import ConfigError
from conftest import REPO
from test_sharpose_model import (data_samples, images, peaked, tiny_backbone,
                                 tiny_model)

QUICKSTART = (
    REPO / 'configs/sharpose/'
    'td-hm_sharpose-s-a0.5_2xb8-12e_synthetic-128x96.py')


def options_model(backbone: dict = {}, **head) -> torch.nn.Module:
    """The tiny model with backbone and head options, in training with the
    quality loss on (epoch 3 > the head's qp_start_epoch 2)."""
    model = tiny_model(tiny_backbone(**backbone), **head).train()
    SHaRPoseQualityHook().before_train_epoch(
        SimpleNamespace(model=model, epoch=2))
    return model


def predict_samples(batch: int) -> list:
    """Samples as the test pipeline packs them (what decoding and
    ``add_pred_to_datasample`` read)."""
    samples = []
    for _ in range(batch):
        sample = PoseDataSample(
            metainfo=dict(
                input_size=np.array([96, 128]),
                input_center=np.array([100., 120.]),
                input_scale=np.array([150., 200.]),
                flip_indices=list(range(17))))
        sample.gt_instances = InstanceData(
            bboxes=np.array([[25., 20., 175., 220.]]), bbox_scores=np.ones(1))
        samples.append(sample)
    return samples


def targets(samples: list) -> tuple:
    """Target heatmaps ``(B, K, h, w)`` and keypoint weights ``(B, K)``."""
    return (torch.stack([s.gt_fields.heatmaps for s in samples]),
            torch.cat([s.gt_instance_labels.keypoint_weights
                       for s in samples]))


# replace_oks -----------------------------------------------------------------


def test_replace_oks_puts_the_quality_token_into_the_fine_pass():
    """The fine pass's sequence starts with the learned quality token; its
    output, through the same quality predictor, is ``fine_quality`` for
    refined instances (the coarse quality for the others) and the keypoint
    tokens follow it."""
    backbone = MODELS.build(tiny_backbone(replace_oks=True)).eval()
    with torch.no_grad():
        backbone.quality_token.normal_()
        backbone.keypoint_tokens.normal_()
    backbone.train_epoch = 5  # validation after qp_start_epoch: gated
    inputs = images(3)
    with torch.no_grad():
        quality = backbone(inputs).quality
    backbone.qp_threshold = float(quality.median())  # refines 1 of 3

    seen = {}
    first_block = backbone.blocks[0].register_forward_hook(
        lambda m, args, out: seen.setdefault('fine_in', []).append(args[0]))
    final_norm = backbone.norm.register_forward_hook(
        lambda m, args, out: seen.setdefault('fine_out', []).append(out))
    with torch.no_grad():
        feats = backbone(inputs)
    first_block.remove()
    final_norm.remove()
    fine_in, fine_out = seen['fine_in'][1], seen['fine_out'][1]
    refined = feats.refine_mask
    assert refined.tolist() == (quality < quality.median()).tolist()
    assert fine_in.shape[1] == backbone.fine_sequence_length == (
        1 + 17 + 4 * 6 + 12 - 6)
    torch.testing.assert_close(fine_in[:, 0], backbone.quality_token[:, 0])
    torch.testing.assert_close(fine_in[:, 1:18],
                               backbone.keypoint_tokens.expand(1, -1, -1))
    predictor = backbone.quality_predictor
    expected = predictor(fine_out[:, :1])
    torch.testing.assert_close(feats.fine_quality[refined], expected)
    torch.testing.assert_close(feats.fine_quality[~refined],
                               feats.quality[~refined])
    torch.testing.assert_close(feats.fine_tokens[refined], fine_out[:, 1:])
    assert not torch.allclose(feats.fine_quality[refined],
                              feats.quality[refined])

    plain = MODELS.build(tiny_backbone())
    assert plain.fine_sequence_length == backbone.fine_sequence_length - 1
    with torch.no_grad():
        assert plain(inputs).fine_quality is None


@pytest.mark.parametrize('flip_test', [False, True])
def test_replace_oks_reports_the_predicted_quality_as_keypoint_scores(
        flip_test):
    """Every keypoint score of an instance is its fine-pass quality (of the
    unflipped crop when flip testing); without the option the scores are
    the heatmap maxima, which differ."""
    inputs = images(2)
    for replace_oks in (True, False):
        model = tiny_model(
            tiny_backbone(replace_oks=replace_oks),
            replace_oks=replace_oks).eval()
        model.test_cfg = dict(flip_test=flip_test, shift_heatmap=False)
        with torch.no_grad():
            feats = model.backbone(inputs)
            results = model(inputs, predict_samples(2), mode='predict')
        quality = feats.fine_quality if replace_oks else feats.quality
        for result, expected in zip(results, quality.tolist()):
            scores = result.pred_instances.keypoint_scores
            assert scores.shape == (1, 17)
            if replace_oks:
                np.testing.assert_allclose(scores, expected, rtol=1e-6)
            else:
                assert not np.allclose(scores, expected)


def test_replace_oks_trains_the_fine_quality_on_the_fine_heatmaps():
    """``loss_quality_fine = 0.03 * mean((fine_quality - OKS(fine))^2)``
    over the refined instances (all, in training)."""
    model = options_model(dict(replace_oks=True), replace_oks=True)
    inputs, samples = images(4), data_samples(4)
    feats = model.backbone(inputs)
    losses = model.head.loss(feats, samples)
    fine = model.head.tokens_to_heatmaps(feats.fine_tokens).detach()
    gt, weights = targets(samples)
    oks, valid = model.head.instance_oks(fine, gt, weights,
                                         torch.tensor([[150., 200.]] * 4))
    assert valid.all()
    expected = 0.03 * ((feats.fine_quality - oks)**2).mean()
    torch.testing.assert_close(losses['loss_quality_fine'], expected)
    losses['loss_quality_fine'].backward()
    assert model.backbone.quality_token.grad.abs().max() > 0


# qp_abs ----------------------------------------------------------------------


def test_qp_abs_gates_on_the_probability_of_a_two_class_softmax():
    backbone = MODELS.build(tiny_backbone(qp_abs=True)).eval()
    backbone.train_epoch = None  # standalone test: gated
    predictor = backbone.quality_predictor
    assert predictor.mlp[6].out_features == 2
    with torch.no_grad():
        feats = backbone(images(4))
        backbone.qp_threshold = float(feats.quality.median())
        feats = backbone(images(4))
    assert feats.quality_logits.shape == (4, 2)
    torch.testing.assert_close(feats.quality,
                               feats.quality_logits.softmax(dim=1)[:, 1])
    assert feats.refine_mask.tolist() == (feats.quality
                                          < backbone.qp_threshold).tolist()
    assert 0 < feats.refine_mask.sum() < 4


def test_qp_abs_loss_is_a_two_class_cross_entropy():
    """``loss_quality = 0.03 * CE(logits, OKS >= qp_abs_threshold)``, by hand
    from log-softmax; the threshold is set between the instances' OKS so
    that both classes occur."""
    model = options_model(dict(qp_abs=True), qp_abs=True)
    inputs, samples = images(4), data_samples(4)
    feats = model.backbone(inputs)
    coarse = model.head.tokens_to_heatmaps(feats.coarse_tokens).detach()
    gt, weights = targets(samples)
    oks, _ = model.head.instance_oks(coarse, gt, weights,
                                     torch.tensor([[150., 200.]] * 4))
    model.head.qp_abs_threshold = float(oks.median())
    labels = (oks >= oks.median()).long()
    assert 0 < labels.sum() < 4
    losses = model.head.loss(feats, samples)
    log_p = feats.quality_logits.log_softmax(dim=1)
    expected = 0.03 * -log_p[torch.arange(4), labels].mean()
    torch.testing.assert_close(losses['loss_quality'], expected)
    regression = 0.03 * ((feats.quality - oks)**2).mean()
    assert not torch.isclose(losses['loss_quality'], regression)


@pytest.mark.parametrize('option', ['replace_oks', 'qp_abs'])
@pytest.mark.parametrize('backbone,head', [(True, False), (False, True)])
def test_shared_options_must_be_set_on_both(option, backbone, head):
    model = options_model({option: backbone}, **{option: head})
    with pytest.raises(ConfigError, match=f'{option} alike'):
        model(images(2), data_samples(2), mode='loss')


def test_qp_abs_refuses_another_activation():
    with pytest.raises(ConfigError, match='leave quality_activation'):
        MODELS.build(tiny_backbone(qp_abs=True, quality_activation='sigmoid'))


# qp_type='pck' ---------------------------------------------------------------


@pytest.mark.parametrize('swapped', [True, False])
def test_pck_target_is_mmposes_pck_of_each_instance(swapped):
    """Per instance, MMPose's ``keypoint_pck_accuracy`` (threshold 0.05,
    normalised by the heatmap size: ``[h, w]`` for (x, y) as MMPose's
    ``pose_pck_accuracy`` with the axes quirk, ``[w, h]`` without) of the
    argmax positions."""
    head = tiny_model(qp_type='pck', oks_swap_heatmap_axes=swapped).head
    rng = np.random.default_rng(3)
    target = torch.stack([
        peaked([tuple(rng.integers([0, 0], [24, 32])) for _ in range(17)])
        for _ in range(3)
    ])
    offsets = rng.integers(-3, 4, (3, 17, 2))
    prediction = torch.stack([
        peaked([
            tuple(
                np.clip(np.argwhere(t.numpy() == 1)[0][::-1] + o, 0, [23, 31]))
            for t, o in zip(maps, offs)
        ]) for maps, offs in zip(target, offsets)
    ])
    prediction[0, 4] = -0.1  # no positive value: position (-1, -1)
    weights = torch.from_numpy((rng.uniform(size=(3, 17))
                                > 0.3).astype(np.float32))
    weights[2] = 0  # no weighted keypoint: left out
    pck, valid = head.instance_pck(prediction, target, weights)
    assert valid.tolist() == [True, True, False]

    def argmax_xy(maps):
        flat = maps.flatten(1)
        index = flat.argmax(1).numpy()
        xy = np.stack([index % 24, index // 24], -1).astype(np.float32)
        xy[flat.max(1).values.numpy() <= 0] = -1
        return xy

    norm = np.array([[32., 24.] if swapped else [24., 32.]])
    for i in range(2):
        _, expected, _ = keypoint_pck_accuracy(
            argmax_xy(prediction[i])[None],
            argmax_xy(target[i])[None], weights[i].numpy()[None] > 0, 0.05,
            norm)
        assert pck[i].item() == pytest.approx(expected, abs=1e-6)
    assert 0 < pck[0] < 1


def test_pck_quality_loss_regresses_the_pck():
    model = options_model(qp_type='pck')
    inputs, samples = images(4), data_samples(4)
    feats = model.backbone(inputs)
    losses = model.head.loss(feats, samples)
    coarse = model.head.tokens_to_heatmaps(feats.coarse_tokens).detach()
    gt, weights = targets(samples)
    pck, _ = model.head.instance_pck(coarse, gt, weights)
    torch.testing.assert_close(losses['loss_quality'],
                               0.03 * ((feats.quality - pck)**2).mean())
    torch.testing.assert_close(losses['pck_coarse'], pck.mean())
    assert 'oks_coarse' not in losses


# loss_distill ----------------------------------------------------------------


@pytest.mark.parametrize('kind', ['kl', 'mse'])
def test_distillation_loss_from_fine_to_coarse_tokens(kind):
    """``loss_distill`` equals an independent KL (softmax over each token's
    channels, averaged over tokens) or MSE between the coarse and fine
    tokens of the refined instances, times its weight; the fine tokens are
    the detached teacher. Tokens are replaced by random ones (std 2) so
    that the two distributions differ clearly."""
    model = options_model(loss_distill=kind, distill_loss_weight=0.5)
    inputs, samples = images(3), data_samples(3)
    feats = model.backbone(inputs)
    generator = torch.Generator().manual_seed(0)
    coarse, fine = ((
        2 * torch.randn(3, 17, 32, generator=generator)).requires_grad_()
                    for _ in range(2))
    refined = torch.tensor([True, True, False])
    losses = model.head.loss(
        feats._replace(
            coarse_tokens=coarse, fine_tokens=fine, refine_mask=refined),
        samples)
    student = coarse[:2].detach().double()
    teacher = fine[:2].detach().double()
    if kind == 'mse':
        expected = ((student - teacher)**2).mean()
    else:
        p = teacher.softmax(-1)
        expected = (p * (p.log() - student.log_softmax(-1))).sum(-1).mean()
    # float32 against float64: relative rounding of a sum of ~1e3 terms.
    assert losses['loss_distill'].item() == pytest.approx(
        0.5 * expected.item(), rel=1e-5)
    losses['loss_distill'].backward()
    assert coarse.grad[:2].abs().min() > 0 and not coarse.grad[2].any()
    assert fine.grad is None
    assert 'loss_distill' not in options_model().head.loss(feats, samples)


def test_bad_option_values_are_named():
    with pytest.raises(ConfigError, match='loss_distill'):
        tiny_model(loss_distill='l1')
    with pytest.raises(ConfigError, match='qp_type'):
        tiny_model(qp_type='ap')
    with pytest.raises(ConfigError, match='patch_selection'):
        MODELS.build(tiny_backbone(patch_selection='top'))


# ablation switches -----------------------------------------------------------


def test_without_feature_reuse_fine_patches_are_embeddings_alone():
    """feature_reuse=False builds no reuse block, and its fine pass equals
    the reuse model's with the reuse block's output zeroed (and differs
    from it with the reuse block as trained)."""
    without = MODELS.build(tiny_backbone(feature_reuse=False)).eval()
    with_reuse = MODELS.build(tiny_backbone()).eval()
    assert not any('reuse_block' in k for k in without.state_dict())
    torch.manual_seed(0)
    with torch.no_grad():
        for p in with_reuse.parameters():
            p.normal_(std=0.3)
    with_reuse.train_epoch = without.train_epoch = 0  # never gated
    loaded = without.load_state_dict(with_reuse.state_dict(), strict=False)
    assert loaded.missing_keys == []
    inputs = images(2)
    with torch.no_grad():
        reused = with_reuse(inputs).fine_tokens
        plain = without(inputs).fine_tokens
        with_reuse.reuse_block[1].fc2.weight.zero_()
        with_reuse.reuse_block[1].fc2.bias.zero_()
        zeroed = with_reuse(inputs).fine_tokens
    torch.testing.assert_close(plain, zeroed, rtol=0, atol=0)
    assert not torch.allclose(plain, reused)


def test_random_patch_selection_ignores_the_attention():
    """patch_selection='random' refines k distinct coarse patches drawn anew
    each forward (every patch drawn sometime over 30 forwards), while the
    official rule always picks the top-k of the attention scores."""
    inputs = images(1)
    picks = {}
    for rule in ('random', 'attention'):
        backbone = MODELS.build(tiny_backbone(patch_selection=rule)).eval()
        backbone.train_epoch = 0  # never gated
        torch.manual_seed(0)
        with torch.no_grad():
            for p in backbone.parameters():
                p.normal_(std=0.3)
            runs = [backbone(inputs) for _ in range(30)]
        picks[rule] = [tuple(r.selected_patches[0].tolist()) for r in runs]
        top = runs[0].patch_scores[0].argsort(descending=True)[:6]
    assert all(len(set(p)) == 6 and max(p) < 12 for p in picks['random'])
    assert len(set(picks['random'])) > 1
    assert set().union(*picks['random']) == set(range(12))
    assert set(picks['attention']) == {tuple(top.tolist())}


def test_zero_attention_momentum_ranks_by_the_last_block():
    """attention_momentum=0 (docs: "last-layer attention" ablation): the
    patch scores are the last coarse block's keypoint rows (0..K-2, the
    official slice) over the patch columns."""
    model = tiny_model(tiny_backbone(attention_momentum=0.)).eval()
    inputs = images(2)
    maps = collect_attention(model, inputs)
    with torch.no_grad():
        scores = model.backbone(inputs).patch_scores
    last_coarse = maps[model.backbone.depth - 1]
    torch.testing.assert_close(scores, last_coarse[:, 1:17, 18:].sum(1))


# docs/sharpose.md ------------------------------------------------------------

ABLATION_ROW = re.compile(r'^\|[^|]+\|\s*`(--cfg-options [^`]+)`')


def documented_ablations() -> list:
    text = (REPO / 'docs/sharpose.md').read_text()
    section = text.split('## Options and ablations', 1)[1].split('\n## ')[0]
    return [
        m.group(1) for m in map(ABLATION_ROW.match, section.splitlines()) if m
    ]


def test_docs_list_the_options_and_ablations():
    lines = ' '.join(documented_ablations())
    for option in ('replace_oks=True', 'qp_abs=True', 'qp_type=pck',
                   'loss_distill=kl', 'loss_distill=mse',
                   'feature_reuse=False', 'patch_selection=random',
                   'attention_momentum=0.0', 'score_all_keypoints=True',
                   'qp_threshold=inf', 'alpha='):
        assert option in lines, option


@pytest.fixture(scope='module')
def quickstart() -> Config:
    return Config.fromfile(QUICKSTART)


@pytest.mark.parametrize('line', documented_ablations())
def test_documented_ablation_builds_and_trains(line, quickstart):
    """Each ``--cfg-options`` line of the docs' table, parsed and checked
    as the tools do, on the quickstart config made tiny: builds, and runs a
    training loss (quality loss on) and a prediction."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    options = parser.parse_args(shlex.split(line)).cfg_options
    cfg = copy.deepcopy(quickstart)
    check_cfg_options(cfg, options)
    cfg.merge_from_dict(options)
    check_value_types(cfg, options)
    cfg.merge_from_dict({
        'model.backbone.embed_dims': 32,
        'model.backbone.depth': 4,
        'model.backbone.num_heads': 4,
        'model.head.in_channels': 32
    })
    model = MODELS.build(cfg.model).train()
    SHaRPoseQualityHook().before_train_epoch(
        SimpleNamespace(model=model, epoch=cfg.model.head.qp_start_epoch))
    inputs = torch.randn(2, 3, 128, 96)
    losses = model(inputs, data_samples(2), mode='loss')
    total = sum(v for k, v in losses.items() if k.startswith('loss'))
    assert torch.isfinite(total)
    total.backward()
    model.eval()
    with torch.no_grad():
        results = model(inputs, predict_samples(2), mode='predict')
    assert all(
        np.isfinite(r.pred_instances.keypoint_scores).all() for r in results)
