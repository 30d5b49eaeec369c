"""Everything this package changes about its environment, in one place.

Imported by ``sspose_mm/__init__.py`` before anything from mmpose, so that
importing ``sspose_mm`` is all a user (or a config's ``custom_imports``) needs.

1. ``mmcv._ext``: mmcv-lite ships no compiled ops, but mmpose imports
   ``mmcv.ops`` when its heads register (EDPose). A placeholder module lets the
   import succeed; calling any op raises a RuntimeError that names the op and
   how to get compiled ops. Installed only when the real ``mmcv._ext`` is absent.
2. Checkpoint loading with ``torch.load(weights_only=True)``: mmengine 0.10.7
   calls ``torch.load`` without ``weights_only``, and since torch 2.6 the
   default rejects the runner's own checkpoints (numpy objects in ``meta`` and
   ``message_hub``). Instead of the process-wide escape hatch
   (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``), local checkpoints are loaded with
   ``weights_only=True``; only files the user explicitly resumes from
   (:func:`trust_checkpoint`) may be unpickled in full.
3. Atomic checkpoint writes: mmengine's local file backend writes in place, so
   a crash while saving leaves a truncated ``epoch_N.pth``. The local backend is
   replaced by one that writes a temporary file and renames it.
4. mmengine imports the deprecated ``pkg_resources`` and setuptools warns
   about it on every start; that warning (and only it) is silenced.
5. Distributed training without CUDA: mmengine's launcher calls
   ``torch.cuda.set_device`` and wraps models with ``device_ids=[rank]``.
   :func:`setup_distributed` initialises a gloo process group and a CPU-ready
   DDP wrapper config instead. Only on machines without NVIDIA GPUs: where
   there are GPUs that this PyTorch cannot use (driver too old for its CUDA,
   GPU too old for its kernels), :func:`check_gpus_usable` stops with what to
   install instead of training on the CPU.
6. MMPose's COCO-style datasets leave out, without a word, the people
   (top-down samples) with no labelled keypoint or a zero-area box, as the
   published trainings did. They still do, but the count is logged as a
   warning: nothing is skipped silently.
"""
import functools
import glob
import importlib.machinery
import importlib.metadata
import importlib.util
import logging
import os
import os.path as osp
import pickle
import re
import shutil
import subprocess
import sys
import types
import uuid
import warnings
from typing import List, Optional, Sequence, Tuple, Union

import torch

from .errors import CheckpointError, DeviceError

warnings.filterwarnings('ignore', message='pkg_resources is deprecated',
                        category=UserWarning)


def _install_mmcv_ext_placeholder() -> None:
    if 'mmcv._ext' in sys.modules:
        return
    try:
        if importlib.util.find_spec('mmcv._ext') is not None:
            return
    except (ImportError, ValueError):
        pass
    placeholder = types.ModuleType('mmcv._ext')
    # mmengine's mmcv_full_available() inspects __spec__; a spec without an
    # origin makes it report "no compiled ops" instead of raising.
    placeholder.__spec__ = importlib.machinery.ModuleSpec('mmcv._ext', None)

    def __getattr__(name: str):
        # mmcv's ext_loader checks hasattr() for every op at import time, so
        # each op must exist; it fails only when called.
        if name.startswith('__'):
            raise AttributeError(name)

        def missing_op(*args, **kwargs):
            raise RuntimeError(
                f'The mmcv op "{name}" needs compiled mmcv ops, but only '
                'mmcv-lite is installed. sspose_mm models use no mmcv op, and '
                'tools/infer.py needs no detector (--bbox, --det-file or the '
                'whole image); for a detector or other models build mmcv '
                'with ops as docs/gpu.md ("Detection on GPU machines") says.')

        missing_op.__name__ = name
        return missing_op

    placeholder.__getattr__ = __getattr__
    sys.modules['mmcv._ext'] = placeholder
    # As a real import would, bind it on the parent (`mmcv._ext` works).
    import mmcv
    mmcv._ext = placeholder


_install_mmcv_ext_placeholder()

# Imported only after the placeholder is in place.
from mmengine.fileio.backends import LocalBackend, register_backend  # noqa: E402
from mmengine.runner.checkpoint import CheckpointLoader  # noqa: E402

_TRUSTED_CHECKPOINTS = set()


def trust_checkpoint(path: str) -> None:
    """Allow full unpickling of one checkpoint file the user resumes from.

    Checkpoints of this package's runs hold only tensors and plain values
    (``PlainCheckpointHook``) and need no trust. Runner checkpoints written
    without it carry optimizer, scheduler and message-hub state that
    ``weights_only=True`` cannot read; ``tools/train.py --resume FILE
    --trust-checkpoint`` is the user's explicit choice for one such file of
    their own, so only that file is trusted.
    """
    _TRUSTED_CHECKPOINTS.add(osp.realpath(osp.expanduser(path)))


# First bytes of files mistaken for checkpoints. torch.save writes a zip
# archive (``PK``) or, before torch 1.6, a pickle (protocol byte 0x80).
_FILE_KINDS = ((b'\xff\xd8\xff', 'a JPEG image'), (b'\x89PNG', 'a PNG image'),
               (b'GIF8', 'a GIF image'), (b'\x1f\x8b', 'a gzip archive'),
               (b'\x89HDF', 'an HDF5 file'), (b'<', 'an HTML or XML page'),
               (b'{', 'JSON or other text'))


def _not_a_checkpoint(path: str) -> Optional[CheckpointError]:
    """The error for a file whose first bytes are those of no PyTorch
    checkpoint (e.g. a JPEG renamed ``.pth``); None if they could be."""
    with open(path, 'rb') as f:
        head = f.read(16)
    if not head or head.startswith(b'PK') or head[:1] == b'\x80':
        return None
    kind = next((name for magic, name in _FILE_KINDS
                 if head.startswith(magic)), None)
    if kind is None and len(head) > 9 and head[8:10] == b'{"':
        kind = 'a safetensors file'  # 8-byte header length, then JSON
    return CheckpointError(
        f'{path} is not a PyTorch checkpoint: it is '
        f'{kind or "neither the zip archive nor the pickle torch.save writes"}'
        '. Check the file name, or download the checkpoint again.')


def _corrupt_checkpoint(path: str, error: BaseException) -> CheckpointError:
    if osp.isfile(path):
        other_file = _not_a_checkpoint(path)
        if other_file is not None:
            return other_file
    size = osp.getsize(path) if osp.isfile(path) else 0
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


def _torch_load(path: str, map_location, weights_only: bool):
    """``torch.load`` with one clear error for refused and broken files."""
    try:
        return torch.load(path, map_location=map_location,
                          weights_only=weights_only)
    except pickle.UnpicklingError as error:
        if weights_only and 'Unsupported global' in str(error):
            name = unsafe_global(error)
            raise CheckpointError(
                f'Refused to load {path}: it contains pickled Python objects'
                f'{f" (such as {name})" if name else ""}, not only tensors '
                'and plain data, '
                'and loading it could run code; nothing in it was run. If you'
                f' trust the file, python tools/convert_ckpt.py {path} OUT.pth'
                ' --trust-checkpoint saves its weights alone (converting an '
                'official checkpoint on the way); to resume a run of your own'
                ' from it add --trust-checkpoint to --resume.') from error
        raise _corrupt_checkpoint(path, error) from error
    except EOFError as error:
        raise _corrupt_checkpoint(path, error) from error
    except (FileNotFoundError, PermissionError):
        raise
    except OSError as error:  # torch's zip reader on a cut-off archive
        raise _corrupt_checkpoint(path, error) from error
    except RuntimeError as error:
        if 'PytorchStreamReader' in str(error):
            raise _corrupt_checkpoint(path, error) from error
        raise


def safe_torch_load(path: str, map_location=None):
    """``torch.load`` with ``weights_only=True`` and a clear error on refusal
    or on a truncated or corrupt file."""
    return _torch_load(path, map_location, weights_only=True)


def load_from_local(filename: str, map_location=None):
    """mmengine's local checkpoint loader, with ``weights_only`` kept on."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'Checkpoint file not found: {filename}')
    trusted = osp.realpath(filename) in _TRUSTED_CHECKPOINTS
    return _torch_load(filename, map_location, weights_only=not trusted)


CheckpointLoader.register_scheme(prefixes='', loader=load_from_local,
                                 force=True)


class AtomicLocalBackend(LocalBackend):
    """Local file backend whose writes are all-or-nothing.

    The bytes go to a temporary file in the target folder, which then replaces
    the target with ``os.replace`` (atomic on POSIX and Windows), so a crash
    during a save never leaves a truncated checkpoint or ``last_checkpoint``.
    """

    def put(self, obj: bytes, filepath: Union[str, os.PathLike]) -> None:
        atomic_write(str(filepath), obj)

    def put_text(self, obj: str, filepath: Union[str, os.PathLike],
                 encoding: str = 'utf-8') -> None:
        atomic_write(str(filepath), obj.encode(encoding))


def atomic_write(filepath: str, data: bytes) -> None:
    """Write ``data`` to ``filepath`` all-or-nothing (temp file, then rename).

    The temporary file is created with mode 0666 less the umask, as
    ``open(path, 'wb')`` does (``mkstemp`` would make every checkpoint and
    picture 0600, unreadable to the user's group and other tools).
    """
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


register_backend('local', AtomicLocalBackend, force=True, prefixes='')


# The oldest driver each CUDA major version of a PyTorch wheel runs on
# (NVIDIA's CUDA release notes: 12.x with minor version compatibility).
_MIN_DRIVER = {12: '525.60.13', 13: '580.65.06'}


def visible_nvidia_gpus(dev: str = '/dev') -> List[str]:
    """The NVIDIA GPUs this machine shows, whether or not CUDA works.

    Their device files (``/dev/nvidia0``, ...; also inside containers given
    GPUs), else the lines of ``nvidia-smi -L`` (WSL has no such files).
    """
    nodes = sorted(glob.glob(osp.join(dev, 'nvidia[0-9]*')))
    if nodes or shutil.which('nvidia-smi') is None:
        return nodes
    try:
        listed = subprocess.run(['nvidia-smi', '-L'], capture_output=True,
                                text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in listed.splitlines()
            if line.startswith('GPU ')]


def _runs_on(capability: Tuple[int, int], archs: Sequence[str]) -> bool:
    """Whether kernels built for ``archs`` (``sm_86``, ``compute_90``...)
    run on a GPU of ``capability``: a cubin on the same major version with
    a minor one not above it, PTX on any newer GPU."""
    for arch in archs:
        kind, _, number = arch.partition('_')
        digits = ''.join(c for c in number if c.isdigit())
        built = (int(digits[:-1]), int(digits[-1]))
        if kind == 'sm' and built[0] == capability[0] and (
                built[1] <= capability[1]):
            return True
        if kind == 'compute' and built <= capability:
            return True
    return False


def _install_line(cuda12: bool) -> str:
    """pip's line for this PyTorch version as a default (PyPI) or CUDA 12
    build, with the torchvision installed beside it."""
    line = f'pip install torch=={torch.__version__.split("+")[0]}'
    try:
        line += f' torchvision=={importlib.metadata.version("torchvision")}'
    except importlib.metadata.PackageNotFoundError:
        pass
    return line + (' --index-url https://download.pytorch.org/whl/cu126'
                   if cuda12 else '')


def check_gpus_usable() -> None:
    """Stop where NVIDIA GPUs are present but this PyTorch cannot use them.

    Without the check ``torch.cuda.is_available()`` is just False (a driver
    older than the wheel's CUDA needs, a CPU-only wheel) and training runs,
    slowly, on the CPU. ``CUDA_VISIBLE_DEVICES=''`` (no GPU wanted) skips it.

    Raises:
        DeviceError: why, and what to install.
    """
    if os.environ.get('CUDA_VISIBLE_DEVICES', None) in ('', '-1'):
        return
    gpus = visible_nvidia_gpus()
    if not gpus:
        return
    cuda12 = f'the CUDA 12 build (driver >= {_MIN_DRIVER[12]}): ' + (
        _install_line(cuda12=True))
    cuda = torch.version.cuda
    found = (f'{len(gpus)} NVIDIA GPU(s) found ({gpus[0]}) but PyTorch '
             f'{torch.__version__} cannot use them')
    if cuda is None:
        problem = (f'{found}: it is a CPU-only build. Install a CUDA build '
                   f'of the same version: {_install_line(cuda12=False)} '
                   f'(CUDA 13, driver >= {_MIN_DRIVER[13]}), or {cuda12}')
    elif not torch.cuda.is_available():
        try:
            torch.cuda.init()
            why = 'CUDA reports no usable device'
        except Exception as error:  # noqa: BLE001 - its text is the why
            why = str(error).strip().split('. ')[0].rstrip('.')
        driver = _MIN_DRIVER.get(int(cuda.split('.')[0]), 'its CUDA needs')
        problem = (f'{found} ({why}). This build is for CUDA {cuda} and '
                   f'needs NVIDIA driver >= {driver}: update the driver, or '
                   f'install {cuda12}')
    else:
        archs = torch.cuda.get_arch_list()
        old = [i for i in range(torch.cuda.device_count())
               if not _runs_on(torch.cuda.get_device_capability(i), archs)]
        if not old:
            return
        major, minor = torch.cuda.get_device_capability(old[0])
        problem = (f'GPU {old[0]} ({torch.cuda.get_device_name(old[0])}, '
                   f'compute capability {major}.{minor}) is too old for '
                   f'PyTorch {torch.__version__}, whose kernels are built '
                   f'for {" ".join(archs)}: install {cuda12}')
    raise DeviceError(f'{problem} (docs/gpu.md). To run on the CPU instead '
                      'set CUDA_VISIBLE_DEVICES= (empty).')


def setup_distributed(cfg, launcher: str) -> None:
    """Prepare ``cfg`` for the launcher, using gloo on CPU-only machines.

    With CUDA the runner's own initialisation (NCCL) is used unchanged.
    Without it the gloo process group is created here, before the Runner, so
    mmengine skips its CUDA-only init, and DDP wraps the model without
    ``device_ids``.
    """
    cfg.launcher = launcher
    check_gpus_usable()
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise RuntimeError(
            f'--launcher {launcher} without CUDA is not supported: use the '
            'pytorch launcher (./dist_train.sh), which runs on CPU with gloo.')
    import torch.distributed as dist
    if not dist.is_initialized():
        timeout = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout')
        kwargs = {}
        if timeout is not None:
            import datetime
            kwargs['timeout'] = datetime.timedelta(seconds=timeout)
        dist.init_process_group(backend='gloo', **kwargs)
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    cfg.model_wrapper_cfg = dict(
        type='MMDistributedDataParallel',
        device_ids=None,
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))


def resolve_device(device: Optional[str] = None) -> str:
    """``device`` if given, else ``cuda:0`` when available, else ``cpu``
    (on a machine without NVIDIA GPUs: :func:`check_gpus_usable`)."""
    if device:
        return device
    check_gpus_usable()
    return 'cuda:0' if torch.cuda.is_available() else 'cpu'


def _log_left_out_people() -> None:
    from mmengine.logging import print_log
    from mmpose.datasets.datasets.base import BaseCocoStyleDataset

    organise = BaseCocoStyleDataset._get_topdown_data_infos
    if getattr(organise, 'logs_left_out', False):
        return

    @functools.wraps(organise)
    def organise_and_count(self, instance_list):
        kept = organise(self, instance_list)
        left_out = len(instance_list) - len(kept)
        if left_out:
            print_log(
                f'{type(self).__name__} ({osp.basename(self.ann_file)}): '
                f'{left_out} of {len(instance_list)} annotated people left '
                'out (no labelled keypoint, or a zero-area box: MMPose\'s '
                f'filtering, as in the published trainings); {len(kept)} '
                'used.', logger='current', level=logging.WARNING)
        return kept

    organise_and_count.logs_left_out = True
    BaseCocoStyleDataset._get_topdown_data_infos = organise_and_count


_log_left_out_people()
