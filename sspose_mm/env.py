"""The tools' environment policies. :func:`setup_env` (without it, as in
MMPose's tools, training is the same) makes mmengine load checkpoints with
``weights_only=True`` (mmengine 0.10.7 omits it; a file resumed from with
``--trust-checkpoint`` is unpickled in full), logs how many people MMPose's
COCO-style datasets leave out (no labelled keypoint, or a zero-area box) and
silences setuptools' ``pkg_resources`` warning. :func:`setup_distributed`
prepares CPU-only runs (gloo); :func:`check_gpus_usable` stops where NVIDIA
GPUs are present that this PyTorch cannot use."""
import contextlib
import functools
import glob
import importlib.metadata
import logging
import os
import os.path as osp
import shutil
import subprocess
import warnings
from datetime import timedelta
from typing import List, Optional, Sequence, Tuple

import torch

from .errors import DeviceError
from .fileio import load_from_local


def setup_env() -> None:
    """Apply the policies of the module docstring; idempotent."""
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local, force=True)
    _log_left_out_people()
    warnings.filterwarnings(
        'ignore', message='pkg_resources is deprecated', category=UserWarning)


# The oldest driver each CUDA major version of a PyTorch wheel runs on
# (NVIDIA's CUDA release notes: 12.x with minor version compatibility).
_MIN_DRIVER = {12: '525.60.13', 13: '580.65.06'}


def visible_nvidia_gpus(dev: str = '/dev') -> List[str]:
    """The NVIDIA GPUs this machine shows, whether or not CUDA works: their
    device files (also in containers), else ``nvidia-smi -L`` (WSL)."""
    nodes = sorted(glob.glob(osp.join(dev, 'nvidia[0-9]*')))
    if nodes or shutil.which('nvidia-smi') is None:
        return nodes
    try:
        listed = subprocess.run(['nvidia-smi', '-L'],
                                capture_output=True,
                                text=True,
                                timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [
        line.strip() for line in listed.splitlines() if line.startswith('GPU ')
    ]


def _runs_on(capability: Tuple[int, int], archs: Sequence[str]) -> bool:
    """Whether kernels built for ``archs`` (``sm_86``, ``compute_90``...) run
    on a GPU of ``capability``: a cubin on the same major, not older minor;
    PTX on any newer GPU."""
    for arch in archs:
        kind, _, number = arch.partition('_')
        digits = ''.join(c for c in number if c.isdigit())
        built = (int(digits[:-1]), int(digits[-1]))
        if built <= capability and (kind == 'compute' or kind == 'sm'
                                    and built[0] == capability[0]):
            return True
    return False


def _install_line(cuda12: bool) -> str:
    """pip's line for this PyTorch (and torchvision) as a PyPI or CUDA 12
    build."""
    line = f'pip install torch=={torch.__version__.split("+")[0]}'
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        line += f' torchvision=={importlib.metadata.version("torchvision")}'
    return line + (' --index-url https://download.pytorch.org/whl/cu126'
                   if cuda12 else '')


def check_gpus_usable() -> None:
    """Raise a :class:`DeviceError` (why, and what to install) where NVIDIA
    GPUs are present but this PyTorch cannot use them, instead of training
    slowly on the CPU. ``CUDA_VISIBLE_DEVICES=''`` skips the check."""
    if os.environ.get('CUDA_VISIBLE_DEVICES') in (
            '', '-1') or not (gpus := visible_nvidia_gpus()):
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
        old = [
            i for i in range(torch.cuda.device_count())
            if not _runs_on(torch.cuda.get_device_capability(i), archs)
        ]
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
    """Prepare ``cfg`` for the launcher. Without CUDA the gloo process group
    is created here, before the Runner, so mmengine skips its CUDA-only
    init, and DDP wraps the model without ``device_ids``."""
    cfg.launcher = launcher
    # One check per machine (a direct torchrun launch too), not per process.
    if int(os.environ.get('LOCAL_RANK', 0)) == 0:
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
        dist.init_process_group(
            backend='gloo',
            timeout=None if timeout is None else timedelta(seconds=timeout))
    cfg.merge_from_dict({'env_cfg.dist_cfg.backend': 'gloo'})
    # mmengine gives DDP device_ids=[LOCAL_RANK], which DDP refuses for a
    # module on the CPU; the config's own wrapper settings stay.
    cfg.model_wrapper_cfg = dict(
        cfg.get('model_wrapper_cfg') or dict(
            type='MMDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False)),
        device_ids=None)


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
                "out (no labelled keypoint, or a zero-area box: MMPose's "
                f'filtering, as in the published trainings); {len(kept)} '
                'used.',
                logger='current',
                level=logging.WARNING)
        return kept

    organise_and_count.logs_left_out = True
    BaseCocoStyleDataset._get_topdown_data_infos = organise_and_count
