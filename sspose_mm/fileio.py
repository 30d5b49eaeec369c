"""Safe checkpoint files: :func:`atomic_write` (and mmengine's
``'atomic_local'`` backend) never leaves a truncated file;
:func:`safe_torch_load` is ``torch.load(weights_only=True)`` with one clear
error for refused (pickled code), truncated and mistaken files, as is
mmengine's loader :func:`load_from_local` (but for ``--trust-checkpoint``)."""
import os
import os.path as osp
import pickle
import re
import uuid
from typing import Optional, Union

import torch
from mmengine.fileio.backends import LocalBackend, register_backend

from .errors import CheckpointError

_TRUSTED_CHECKPOINTS = set()


def trust_checkpoint(path: str) -> None:
    """Allow full unpickling of this one file (``--trust-checkpoint``): one
    written without ``PlainCheckpointHook`` holds optimizer, scheduler and
    message-hub objects that ``weights_only=True`` cannot read."""
    _TRUSTED_CHECKPOINTS.add(osp.realpath(osp.expanduser(path)))


# First bytes of files mistaken for checkpoints. torch.save writes a zip
# archive (``PK``) or, before torch 1.6, a pickle (protocol byte 0x80).
_FILE_KINDS = ((b'\xff\xd8\xff', 'a JPEG image'), (b'\x89PNG', 'a PNG image'),
               (b'GIF8', 'a GIF image'), (b'\x1f\x8b', 'a gzip archive'),
               (b'\x89HDF', 'an HDF5 file'), (b'<', 'an HTML or XML page'),
               (b'{', 'JSON or other text'))


def _corrupt_checkpoint(path: str, error: BaseException) -> CheckpointError:
    """The error for a file torch.load could not read: one whose first bytes
    are those of no checkpoint (a JPEG renamed ``.pth``), or else cut off."""
    head = b''
    if osp.isfile(path):
        with open(path, 'rb') as f:
            head = f.read(16)
    if head and not head.startswith(b'PK') and head[:1] != b'\x80':
        # A safetensors file: an 8-byte header length, then JSON.
        other = ('a safetensors file' if head[8:10] == b'{"' else
                 'neither the zip archive nor the pickle torch.save writes')
        kind = next(
            (name for magic, name in _FILE_KINDS if head.startswith(magic)),
            other)
        return CheckpointError(
            f'{path} is not a PyTorch checkpoint: it is {kind}. Check the '
            'file name, or download the checkpoint again.')
    size = osp.getsize(path) if head else 0
    detail = str(error).splitlines()[0][:100] if str(error) else 'end of file'
    return CheckpointError(
        f'the checkpoint {path} ({size:,} bytes) is truncated or corrupt '
        f'({type(error).__name__}: {detail}); it was probably copied or '
        'downloaded incompletely: get it again.')


_UNSAFE_GLOBAL = re.compile(r'Unsupported global: GLOBAL (\S+)')


def unsafe_global(error: BaseException) -> Optional[str]:
    """The object a ``weights_only`` load refused to unpickle, if named."""
    found = _UNSAFE_GLOBAL.search(str(error))
    return found.group(1) if found else None


def safe_torch_load(path: str, map_location=None, weights_only: bool = True):
    """``torch.load`` with one :class:`CheckpointError` for a refused
    (pickled objects, with ``weights_only``), truncated or corrupt file."""
    try:
        return torch.load(
            path, map_location=map_location, weights_only=weights_only)
    except (FileNotFoundError, PermissionError):
        raise
    # OSError: torch's zip reader on a cut-off archive.
    except (pickle.UnpicklingError, EOFError, OSError, RuntimeError) as error:
        if weights_only and 'Unsupported global' in str(error):
            name = unsafe_global(error)
            raise CheckpointError(
                f'Refused to load {path}: it contains pickled Python objects'
                f'{f" (such as {name})" if name else ""}, not only tensors '
                'and plain data, and loading it could run code; nothing in it '
                'was run. If you'
                f' trust the file, python tools/convert_ckpt.py {path} OUT.pth'
                ' --trust-checkpoint saves its weights alone (converting an '
                'official checkpoint on the way); to resume a run of your own'
                ' from it add --trust-checkpoint to --resume.') from error
        if isinstance(error, RuntimeError) and ('PytorchStreamReader'
                                                not in str(error)):
            raise
        raise _corrupt_checkpoint(path, error) from error


def load_from_local(filename: str, map_location=None):
    """mmengine's local checkpoint loader, with ``weights_only`` kept on."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'Checkpoint file not found: {filename}')
    trusted = osp.realpath(filename) in _TRUSTED_CHECKPOINTS
    return safe_torch_load(filename, map_location, weights_only=not trusted)


class AtomicLocalBackend(LocalBackend):
    """Local file backend whose writes are all-or-nothing
    (:func:`atomic_write`)."""

    def put(self, obj: bytes, filepath: Union[str, os.PathLike]) -> None:
        atomic_write(str(filepath), obj)

    def put_text(self,
                 obj: str,
                 filepath: Union[str, os.PathLike],
                 encoding: str = 'utf-8') -> None:
        atomic_write(str(filepath), obj.encode(encoding))


def atomic_write(filepath: str, data: bytes) -> None:
    """Write ``data`` to ``filepath`` all-or-nothing: a temporary file (mode
    0666 less the umask as ``open`` gives, not ``mkstemp``'s 0600) in the
    same folder, then ``os.replace`` (atomic on POSIX and Windows)."""
    folder = osp.dirname(osp.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    tmp_path = osp.join(
        folder, f'.{osp.basename(filepath)}.{uuid.uuid4().hex[:12]}.tmp')
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, filepath)
    except BaseException:
        if osp.exists(tmp_path):
            os.remove(tmp_path)
        raise


register_backend('atomic_local', AtomicLocalBackend)
