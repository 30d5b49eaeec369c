"""The one helper for checkpoint key prefixes (sspose_mm.utils)."""
from types import SimpleNamespace

import torch
from torch import nn

from sspose_mm.engine.hooks import KeypointTransferHook
from sspose_mm.utils import strip_prefixes


def test_a_data_parallel_state_dict_loads_into_the_bare_model():
    """Keys and the BatchNorm version metadata lose ``module.``, in place;
    a strict load then fits."""
    bare = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    wrapped = nn.DataParallel(
        nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)))
    state_dict = wrapped.state_dict()
    assert all(k.startswith('module.') for k in state_dict)
    assert strip_prefixes(state_dict) is state_dict
    assert list(state_dict) == list(bare.state_dict())
    assert state_dict._metadata['1'] == bare.state_dict()._metadata['1']
    bare.load_state_dict(state_dict, strict=True)
    assert torch.equal(bare[0].weight, wrapped.module[0].weight)


def test_prefixes_are_removed_in_turn_where_present():
    state_dict = {'module.backbone.a': 1, 'backbone.module.b': 2, 'c': 3}
    strip_prefixes(state_dict, ('module.', 'backbone.'))
    assert state_dict == {'a': 1, 'module.b': 2, 'c': 3}


def test_keypoint_transfer_hook_reads_a_data_parallel_checkpoint():
    """The hook strips ``module.`` before comparing with the model (the
    runner strips it only later) and drops the changed last layer."""
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    trained = nn.DataParallel(nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 5)))
    checkpoint = {'state_dict': trained.state_dict()}
    KeypointTransferHook(reinit=['1.']).after_load_checkpoint(
        SimpleNamespace(model=model), checkpoint)
    assert list(checkpoint['state_dict']) == ['0.weight', '0.bias']
