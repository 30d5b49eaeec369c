import logging.handlers
import os
import subprocess
import sys
from pathlib import Path

import pytest

import sspose_mm  # noqa: F401  (environment fixes before mmpose)
from mmengine.logging import MMLogger

REPO = Path(__file__).resolve().parents[1]
# ../shared beside the repository (as on the developers' machines and CI).
SHARED = Path(os.environ.get('SSPOSE_SHARED', REPO.parent / 'shared'))
SHARED_COCO = SHARED / 'data' / 'coco'
GOLDEN = SHARED / 'golden'
QUICKSTART_CONFIG = (REPO / 'configs/transpose/'
                     'td-hm_transpose-r-a3_2xb8-12e_synthetic-128x96.py')


def require_shared(path: Path) -> Path:
    """Shared data is part of the test environment: its absence is an error."""
    if not path.exists():
        raise FileNotFoundError(
            f'{path} is missing: the tests read ../shared beside the repo '
            '(or set SSPOSE_SHARED).')
    return path


def coco_excerpt_options(bbox_file: bool = False) -> dict:
    """--cfg-options pointing a TransPose config at ../shared/data/coco."""
    coco = require_shared(SHARED_COCO)
    options = {}
    for loader in ('train', 'val', 'test'):
        options.update({
            f'{loader}_dataloader.dataset.data_root': str(coco),
            f'{loader}_dataloader.dataset.ann_file': 'test_coco.json',
            f'{loader}_dataloader.dataset.data_prefix.img': '',
            f'{loader}_dataloader.batch_size': 4,
            f'{loader}_dataloader.num_workers': 0,
            f'{loader}_dataloader.persistent_workers': False,
        })
        if loader != 'train':
            options[f'{loader}_dataloader.dataset.bbox_file'] = (
                str(coco / 'test_coco_det_AP_H_56.json') if bbox_file else None)
            options[f'{loader}_evaluator.ann_file'] = str(coco /
                                                          'test_coco.json')
    return options


def as_cli(options: dict) -> list:
    return ['--cfg-options'] + [
        f'{k}={"None" if v is None else v}' for k, v in options.items()
    ]


def run_tool(args: list, timeout: int = 600,
             env: dict = None) -> subprocess.CompletedProcess:
    """Run a repository tool/script the way a user does, from the repo root."""
    command = args if args[0].endswith('.sh') else [sys.executable] + args
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1',
               **(env or {}))
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture
def logged_warnings():
    """Warnings that reach mmengine's current logger (no duplicate filter,
    so each call of print_log is seen)."""
    handler = logging.handlers.BufferingHandler(capacity=1000)
    handler.setLevel(logging.WARNING)
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield handler.buffer
    logger.removeHandler(handler)


@pytest.fixture(scope='session', autouse=True)
def _register_modules():
    from mmpose.utils import register_all_modules
    register_all_modules(init_default_scope=True)
