"""The official ImageNet-fine-tuned SSpose-B checkpoint (ConvMAE's
``ConvViT``: the pretraining trunk without the fusion convolutions,
``fc_norm`` instead of ``norm``, a 1000-class ``head``) converts with the
``sspose-finetune`` layout and initialises the backbone of
``td-hm_sspose-convvit-b-in1kft_*`` with nothing missing.

The official file is synthetic: the key names and shapes of the golden
manifest of the pretraining model (tests/data/golden/sspose) that the
fine-tuning network shares, plus ``fc_norm`` and ``head`` (the golden README
and the spec: "has fc_norm/head instead of norm", "head Linear 768->1000"),
one value per tensor, in the official file format (``model``, ``epoch``,
``args``).
"""
import argparse
import json

import pytest
import torch
from mmengine.config import Config
from mmpose.registry import MODELS

from sspose_mm.apis import convert_checkpoint, convert_state_dict
from sspose_mm.errors import CheckpointError
from sspose_mm.fileio import safe_torch_load
from sspose_mm.models.utils import resize_position_embedding
from conftest import GOLDEN, REPO

POSE_CONFIG = (
    REPO / 'configs/sspose/'
    'td-hm_sspose-convvit-b-in1kft_8xb64-210e_coco-256x192.py')
# Pretraining-only modules: the decoder and the multi-scale fusion.
PRETRAINING_ONLY = ('decoder_', 'mask_token', 'stage1_output_decode.',
                    'stage2_output_decode.', 'norm.')
FINETUNING_ONLY = {
    'fc_norm.weight': (768, ),
    'fc_norm.bias': (768, ),
    'head.weight': (1000, 768),
    'head.bias': (1000, )
}


def official_finetune_shapes() -> dict:
    manifest = json.loads(
        (GOLDEN /
         'sspose/sspose-convmae-b-pretrain.manifest.json').read_text())
    shapes = {
        entry['key']: tuple(entry['shape'])
        for entry in manifest['keys']
        if not entry['key'].startswith(PRETRAINING_ONLY)
    }
    return {**shapes, **FINETUNING_ONLY}


def test_finetuned_checkpoint_initialises_the_whole_backbone(
        tmp_path, logged_warnings):
    # One distinct value per key, as a stride-0 view of one number: every
    # tensor has its official shape, the files stay kilobytes instead of
    # 350 MB, and a key renamed to another's place shows as a wrong value.
    official = {
        key: torch.tensor([float(i)]).expand(shape)
        for i, (key, shape) in enumerate(official_finetune_shapes().items())
    }
    source, out = tmp_path / 'finetune.pth', tmp_path / 'converted.pth'
    torch.save(
        {
            'model': official,
            'epoch': 99,
            'args': argparse.Namespace(model='convvit_base_patch16')
        }, source)
    summary = convert_checkpoint(str(source), str(out))
    assert summary['layout'] == 'sspose-finetune'
    assert summary['dropped'] == ['head.weight', 'head.bias']
    converted = safe_torch_load(str(out))['state_dict']
    assert summary['num_keys'] == len(converted) == len(official) - 2

    cfg = Config.fromfile(POSE_CONFIG)
    cfg.model.backbone.init_cfg.checkpoint = str(out)
    model = MODELS.build(cfg.model)
    backbone_keys = {'backbone.' + k for k in model.backbone.state_dict()}
    assert set(converted) == backbone_keys  # no fusion in either
    del logged_warnings[:]  # the conversion's registry-scope note
    model.init_weights()
    # The loading report: mmengine warns "The model and loaded state dict do
    # not match exactly" with the missing, unexpected or reshaped keys
    # (tests/test_sspose_pretrain.py sees it name the head); here nothing.
    assert not [r.getMessage() for r in logged_warnings]
    state = model.state_dict()
    for key, value in converted.items():
        if key != 'backbone.pos_embed':
            assert torch.equal(state[key], value), key
    assert torch.equal(
        state['backbone.pos_embed'],
        resize_position_embedding(converted['backbone.pos_embed'], (14, 14),
                                  (16, 12)))


def test_finetune_and_pretrain_layouts_tell_their_keys_apart():
    """Either layout names what the other checkpoint lacks or adds."""
    official = {key: torch.zeros(1) for key in official_finetune_shapes()}
    del official['blocks3.10.mlp.fc2.bias']
    with pytest.raises(CheckpointError, match='missing: blocks3.10.mlp.fc2'):
        convert_state_dict(official)
    official['blocks3.10.mlp.fc2.bias'] = torch.zeros(1)
    official['norm.weight'] = torch.zeros(1)
    with pytest.raises(CheckpointError, match='does not know: norm.weight'):
        convert_state_dict(official, 'sspose-finetune')
    with pytest.raises(
            CheckpointError, match='do not fit the sspose-pretrain'):
        convert_state_dict(official, 'sspose-pretrain')
