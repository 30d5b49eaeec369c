"""The checkpoint converter: what it refuses, and what it writes.

Numerical parity of converted checkpoints is in test_transpose_parity.py;
here the official key lists come from tests/data/golden manifests and the
key mapping is checked against test_models.official_key, which is written
independently of the converter.
"""
import argparse
import hashlib
import json
import re
from typing import List

import numpy as np
import pytest
import torch

import sspose_mm
from sspose_mm.apis import (CHECKPOINT_LAYOUTS, CheckpointLayout,
                            convert_checkpoint, convert_state_dict, init_model)
from sspose_mm.errors import CheckpointError
from sspose_mm.models.utils import sine_position_embedding
from conftest import GOLDEN, QUICKSTART_CONFIG, run_tool
from test_models import CONFIGS, official_key
from test_transpose_parity import official_state_dict


def manifest_keys(variant: str) -> List[str]:
    manifest = json.loads(
        (GOLDEN / 'transpose' / f'{variant}.manifest.json').read_text())
    return [entry['key'] for entry in manifest['keys']]


@pytest.fixture(scope='module')
def official():
    """Official-layout TransPose-R-A3 weights (3 encoder layers)."""
    return official_state_dict('transpose-r-a3')


@pytest.mark.parametrize('variant', sorted(CONFIGS))
def test_layout_knows_exactly_the_official_keys(variant):
    keys = manifest_keys(variant)
    expected_layout = 'transpose-r' if '-r-' in variant else 'transpose-h'
    fitting = [
        name for name, layout in CHECKPOINT_LAYOUTS.module_dict.items()
        if layout().matches(keys)
    ]
    assert fitting == [expected_layout]
    layout = CHECKPOINT_LAYOUTS.build(dict(type=expected_layout))
    assert layout.expected_keys(keys) == keys


def test_output_is_plain_and_traceable(official, tmp_path):
    """A wrapped DataParallel checkpoint converts to tensors and plain meta
    that name the source; every tensor arrives unchanged under its name."""
    source, out = tmp_path / 'official.pth', tmp_path / 'converted.pth'
    torch.save({'model': {
        'module.' + k: v
        for k, v in official.items()
    }}, source)
    summary = convert_checkpoint(str(source), str(out))
    checkpoint = torch.load(out, weights_only=True)
    assert set(checkpoint) == {'state_dict', 'meta'}
    sha256 = hashlib.sha256(source.read_bytes()).hexdigest()
    assert checkpoint['meta'] == {
        'source_file': 'official.pth',
        'source_sha256': sha256,
        'layout': 'transpose-r',
        'converted_by': f'sspose_mm {sspose_mm.__version__}',
    }
    assert summary == dict(
        layout='transpose-r',
        num_keys=len(official) - 1,
        dropped=['pos_embedding'],
        out_path=str(out),
        source_sha256=sha256)
    mapped = {official_key(k): v for k, v in checkpoint['state_dict'].items()}
    assert list(mapped) == [k for k in official if k != 'pos_embedding']
    assert all(torch.equal(mapped[k], official[k]) for k in mapped)
    with pytest.raises(CheckpointError, match='already converted'):
        convert_checkpoint(str(out), str(tmp_path / 'twice.pth'))


def test_unknown_keys_are_listed(official):
    extra = {
        'global_encoder.layers.0.extra.weight': torch.zeros(1),
        'aux_head.bias': torch.zeros(1)
    }
    with pytest.raises(CheckpointError) as error:
        convert_state_dict(dict(official, **extra))
    message = str(error.value)
    assert '2 key(s) the transpose-r layout does not know' in message
    assert all(key in message for key in extra)
    assert 'missing' not in message


def test_missing_keys_are_listed(official):
    """A lost BN statistic and a whole middle encoder layer."""
    removed = ['deconv_layers.1.running_var'] + [
        k for k in official if k.startswith('global_encoder.layers.1.')
    ]
    assert len(removed) == 13
    with pytest.raises(CheckpointError) as error:
        convert_state_dict({
            k: v
            for k, v in official.items() if k not in removed
        })
    message = str(error.value)
    assert '13 key(s) of the transpose-r layout are missing' in message
    assert all(key in message for key in removed)


def test_position_embedding_must_be_the_sine_table(official):
    learnable = torch.randn_like(official['pos_embedding'])
    with pytest.raises(CheckpointError, match='pos_embedding differs'):
        convert_state_dict(dict(official, pos_embedding=learnable))
    # The sine table of 384x288 inputs: right kind, not the 256x192 grid.
    other_size = sine_position_embedding(48, 36, 256)[:, None]
    with pytest.raises(CheckpointError, match=r'shape \(1728, 1, 256\)'):
        convert_state_dict(dict(official, pos_embedding=other_size))


def test_layout_mismatch_is_refused(official, tmp_path):
    hrnet_keys = {k: torch.zeros(1) for k in manifest_keys('transpose-h-s')}
    with pytest.raises(
            CheckpointError,
            match=r'do not fit the transpose-r layout \(they look '
            r'like transpose-h\)'):
        convert_state_dict(hrnet_keys, 'transpose-r')
    source, out = tmp_path / 'tp_r.pth', tmp_path / 'out.pth'
    torch.save(official, source)
    with pytest.raises(
            CheckpointError,
            match=r'tp_r.pth: the keys do not fit the transpose-h '
            r'layout \(they look like transpose-r\)'):
        convert_checkpoint(str(source), str(out), layout='transpose-h')
    assert not out.exists()


def test_unusable_inputs_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match='fit no known layout'):
        convert_state_dict({'backbone.conv1.weight': torch.zeros(1)})
    with pytest.raises(CheckpointError, match='does not exist'):
        convert_checkpoint(str(tmp_path / 'none.pth'), str(tmp_path / 'o'))
    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'')
    with pytest.raises(CheckpointError, match='truncated or corrupt'):
        convert_checkpoint(str(garbage), str(tmp_path / 'o'))
    with pytest.raises(CheckpointError, match='would overwrite'):
        convert_checkpoint(str(garbage), str(garbage))
    tensors_only = tmp_path / 'not_named.pth'
    torch.save({'state_dict': {
        'conv1.weight': torch.zeros(1),
        'x': 3
    }}, tensors_only)
    with pytest.raises(CheckpointError, match='not named tensors: x'):
        convert_checkpoint(str(tensors_only), str(tmp_path / 'o'))


class OpensFile:
    """Pickles as a call to ``open(path, 'w')``: loading it creates path."""

    def __init__(self, path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, 'w')


@pytest.mark.parametrize('release', ['mae-script', 'mmpose-0.x-runner'])
def test_release_files_with_their_training_metadata_convert(
        release, official, tmp_path):
    """The training scripts' own files: MAE-style (SSpose) with the parsed
    command line as an ``argparse.Namespace``, MMPose 0.x (SHaRPose) with
    numpy scalars in ``meta``. Their weights convert as a bare state dict
    does; the metadata is not carried over."""
    if release == 'mae-script':
        saved = {
            'model':
            official,
            'optimizer': {
                'state': {}
            },
            'epoch':
            799,
            'scaler': {
                'scale': 65536.0
            },
            'args':
            argparse.Namespace(
                model='sspose_convvit_base',
                mask_ratio=0.75,
                blr=1.5e-4,
                input_size=224,
                device='cuda')
        }
    else:
        saved = {
            'meta': {
                'epoch': 210,
                'seed': np.int64(0),
                'hook_msgs': {
                    'best_score': np.float64(0.774),
                    'last_ckpt': 'epoch_210.pth'
                }
            },
            'state_dict': official
        }
    source, out = tmp_path / 'release.pth', tmp_path / 'converted.pth'
    torch.save(saved, source)
    bare_source, bare_out = tmp_path / 'bare.pth', tmp_path / 'bare_out.pth'
    torch.save(official, bare_source)
    convert_checkpoint(str(source), str(out))
    convert_checkpoint(str(bare_source), str(bare_out))
    converted = torch.load(out, weights_only=True)
    bare = torch.load(bare_out, weights_only=True)
    assert converted['state_dict'].keys() == bare['state_dict'].keys()
    for key, value in bare['state_dict'].items():
        assert torch.equal(converted['state_dict'][key], value), key


@pytest.mark.slow
def test_pickled_code_is_refused_without_running_it(tmp_path):
    # The payload is live: full unpickling runs it.
    control = tmp_path / 'control.pth'
    torch.save({'payload': OpensFile(tmp_path / 'control_ran')}, control)
    torch.load(control, weights_only=False)
    assert (tmp_path / 'control_ran').exists()

    marker, out = tmp_path / 'payload_ran', tmp_path / 'out.pth'
    evil = tmp_path / 'evil.pth'
    torch.save(
        {
            'state_dict': {
                'conv1.weight': torch.zeros(1)
            },
            'payload': OpensFile(marker)
        }, evil)
    result = run_tool(['tools/convert_ckpt.py', str(evil), str(out)])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f'error: Refused to read {evil}: it needs the Python object'
    ), result.stderr
    assert not marker.exists()
    assert not out.exists()


class _Renamed(CheckpointLayout):
    """A minimal layout: ``old.weight`` -> ``new.weight``."""

    description = 'test only'
    markers = ('old.', )

    def expected_keys(self, keys):
        return ['old.weight']

    def convert(self, state_dict):
        return {'new.' + k[4:]: v for k, v in state_dict.items()}, []


def test_registered_layout_is_recognised():
    CHECKPOINT_LAYOUTS.register_module('test-renamed', module=_Renamed)
    try:
        converted, layout, dropped = convert_state_dict(
            {'old.weight': torch.ones(2)})
        assert (list(converted), layout, dropped) == (['new.weight'],
                                                      'test-renamed', [])
        # The converter checks the keys against the layout's own list.
        with pytest.raises(
                CheckpointError,
                match='1 key.s. the test-renamed layout does not '
                'know: old.bias'):
            convert_state_dict({
                'old.weight': torch.ones(2),
                'old.bias': torch.ones(2)
            })
        with pytest.raises(KeyError, match='already registered'):
            CHECKPOINT_LAYOUTS.register_module('test-renamed', module=_Renamed)
    finally:
        CHECKPOINT_LAYOUTS.module_dict.pop('test-renamed')


def quickstart_model() -> torch.nn.Module:
    from mmengine.config import Config
    from mmpose.registry import MODELS
    torch.manual_seed(0)
    return MODELS.build(Config.fromfile(str(QUICKSTART_CONFIG)).model)


@pytest.mark.parametrize('content, kind', [
    (b'\xff\xd8\xff\xe0\x00\x10JFIF' + bytes(100), 'a JPEG image'),
    (b'<!DOCTYPE html><html>Not Found</html>', 'an HTML or XML page'),
])
def test_a_file_that_is_no_checkpoint_says_what_it_is(tmp_path, content, kind):
    fake = tmp_path / 'model.pth'
    fake.write_bytes(content)
    expected = f'{fake} is not a PyTorch checkpoint: it is {kind}.'
    with pytest.raises(CheckpointError, match=re.escape(expected)):
        convert_checkpoint(str(fake), str(tmp_path / 'out.pth'))
    with pytest.raises(CheckpointError, match=re.escape(expected)):
        init_model(str(QUICKSTART_CONFIG), str(fake), 'cpu')


def test_checkpoints_in_this_package_layout_need_no_conversion(tmp_path):
    own = tmp_path / 'epoch_3.pth'
    torch.save(
        {
            'state_dict': quickstart_model().state_dict(),
            'meta': {
                'epoch': 3
            }
        }, own)
    with pytest.raises(CheckpointError) as error:
        convert_checkpoint(str(own), str(tmp_path / 'out.pth'))
    assert str(error.value) == (
        f"{own}: it is already in this package's layout (TransPose-R (3 "
        'transformer layers of width 256, 17 keypoints)): use it directly '
        '(tools, load_from); there is nothing to convert.')
    mmpose_file = tmp_path / 'hrnet.pth'
    torch.save(
        {
            'state_dict': {
                'backbone.stem.weight': torch.zeros(2),
                'head.final_layer.weight': torch.zeros(2)
            }
        }, mmpose_file)
    with pytest.raises(
            CheckpointError,
            match="already in this package's "
            'layout \\(an MMPose model this package does not '
            'know'):
        convert_checkpoint(str(mmpose_file), str(tmp_path / 'out.pth'))
    assert not (tmp_path / 'out.pth').exists()


class RunnerState:
    """Stands for what a plain MMPose runner pickles beside the weights
    (message hub, history buffers): harmless, but not plain data."""

    def __init__(self) -> None:
        self.iteration = 7


@pytest.mark.parametrize('pickled', ['runner checkpoint', 'whole model'])
def test_the_advice_for_a_pickled_checkpoint_works(tmp_path, pickled):
    """Refused files say to run the converter with --trust-checkpoint; doing
    so gives a file every tool loads, with the same weights."""
    model = quickstart_model()
    source, out = tmp_path / 'mine.pth', tmp_path / 'plain.pth'
    torch.save({
        'state_dict': model.state_dict(),
        'hub': RunnerState()
    } if pickled == 'runner checkpoint' else model, source)
    with pytest.raises(CheckpointError) as error:
        init_model(str(QUICKSTART_CONFIG), str(source), 'cpu')
    assert (f'python tools/convert_ckpt.py {source} OUT.pth '
            '--trust-checkpoint saves its weights alone') in str(error.value)
    with pytest.raises(CheckpointError, match='add --trust-checkpoint'):
        convert_checkpoint(str(source), str(out))
    summary = convert_checkpoint(str(source), str(out), trust=True)
    assert summary['layout'] == 'mmpose'
    # The trust was for that one conversion: the file is still refused.
    with pytest.raises(CheckpointError, match='--trust-checkpoint'):
        init_model(str(QUICKSTART_CONFIG), str(source), 'cpu')
    loaded = init_model(str(QUICKSTART_CONFIG), str(out), 'cpu')
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
