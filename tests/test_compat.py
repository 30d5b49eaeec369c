"""sspose_mm.compat (mmcv-lite), sspose_mm.fileio and the checkpoint hooks."""
import os

import numpy as np
import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.logging import HistoryBuffer

import sspose_mm.fileio as fileio
from sspose_mm.engine.hooks import AtomicCheckpointHook
from sspose_mm.engine.hooks.plain_checkpoint_hook import from_plain, to_plain


def test_mmcv_ext_placeholder_raises_a_clear_error_when_an_op_is_called():
    import mmcv._ext
    from mmengine.utils.dl_utils import mmcv_full_available
    if getattr(mmcv._ext, '__file__', None):
        # Full mmcv: its compiled ops are kept, no placeholder.
        assert mmcv_full_available() is True
        return
    assert mmcv_full_available() is False
    with pytest.raises(RuntimeError, match='"nms" needs compiled mmcv ops'):
        mmcv._ext.nms(torch.zeros(1, 4), torch.zeros(1), 0.5, 0)


def test_checkpoints_are_written_atomically(tmp_path, monkeypatch):
    target = tmp_path / 'epoch_1.pth'
    hook = AtomicCheckpointHook(interval=1)
    backend = get_file_backend(str(target), backend_args=hook.backend_args)
    assert isinstance(backend, fileio.AtomicLocalBackend)
    backend.put(b'good', str(target))

    def crash(fd):
        raise OSError('disk died')

    monkeypatch.setattr(os, 'fsync', crash)
    with pytest.raises(OSError):
        backend.put(b'half-written', str(target))
    assert target.read_bytes() == b'good'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['epoch_1.pth']


@pytest.mark.parametrize('umask, mode', [(0o022, 0o644), (0o027, 0o640)])
def test_atomic_writes_keep_the_umask(tmp_path, umask, mode):
    """Checkpoints and pictures get the mode ``open()`` gives (mkstemp made
    them 0600 whatever the umask)."""
    previous = os.umask(umask)
    try:
        fileio.atomic_write(str(tmp_path / 'epoch_1.pth'), b'weights')
    finally:
        os.umask(previous)
    assert (tmp_path / 'epoch_1.pth').stat().st_mode & 0o777 == mode
    assert [p.name for p in tmp_path.iterdir()] == ['epoch_1.pth']


def test_trusted_checkpoint_is_the_only_one_fully_unpickled(tmp_path):
    path = tmp_path / 'runner.pth'
    torch.save({'meta': {'arr': np.arange(3)}}, path)
    with pytest.raises(fileio.CheckpointError):
        fileio.load_from_local(str(path))
    fileio.trust_checkpoint(str(path))
    assert fileio.load_from_local(
        str(path))['meta']['arr'].tolist() == [0, 1, 2]


def test_plain_checkpoint_round_trip(tmp_path):
    buffer = HistoryBuffer()
    for value in (1.0, 2.5, 4.0):
        buffer.update(value)
    state = {
        'meta': {
            'dataset_meta': {
                'sigmas': np.array([0.1, 0.2]),
                'flip_indices': [1, 0]
            },
            'seed': np.int64(5)
        },
        'message_hub': {
            'log_scalars': {
                'train/loss': buffer
            }
        }
    }
    path = tmp_path / 'plain.pth'
    torch.save({k: to_plain(v) for k, v in state.items()}, path)
    loaded = torch.load(path, weights_only=True)
    restored = {k: from_plain(v) for k, v in loaded.items()}
    assert restored['meta']['seed'] == 5
    np.testing.assert_array_equal(restored['meta']['dataset_meta']['sigmas'],
                                  [0.1, 0.2])
    assert restored['meta']['dataset_meta']['flip_indices'] == [1, 0]
    restored_buffer = restored['message_hub']['log_scalars']['train/loss']
    assert restored_buffer.mean() == buffer.mean()
    np.testing.assert_array_equal(restored_buffer.data[1], buffer.data[1])
