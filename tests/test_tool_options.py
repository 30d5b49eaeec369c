"""Our tools build the config MMPose's tools build from the same options,
change it only in the two documented ways, and ``import sspose_mm`` sets
no process-wide warning filter (docs/architecture.md)."""
import importlib
import importlib.util
import warnings
from argparse import Namespace
from pathlib import Path

import mmpose
import torch
from mmengine.config import Config

import sspose_mm.compat
from sspose_mm.cli import enable_visualization, finish_config, read_config
from sspose_mm.env import setup_distributed, setup_env
from conftest import QUICKSTART_CONFIG, coco_excerpt_options

CONFIG = str(QUICKSTART_CONFIG)


def mmpose_merge_args():
    """``merge_args`` of MMPose's ``tools/train.py``: its options, then
    ``--cfg-options`` last."""
    path = Path(mmpose.__file__).parent / '.mim' / 'tools' / 'train.py'
    spec = importlib.util.spec_from_file_location('mmpose_train', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.merge_args


def test_cfg_options_win_over_the_tools_own_as_in_mmpose():
    """``--show-dir d --cfg-options default_hooks.visualization.interval=5``
    (``--interval`` left at its default, 1): the config is MMPose's, with
    5, and the config's own ``wait_time`` (no ``--show``)."""
    options = {'default_hooks.visualization.interval': 5}
    theirs = mmpose_merge_args()(Config.fromfile(CONFIG),
                                 Namespace(
                                     config=CONFIG,
                                     work_dir=None,
                                     no_validate=False,
                                     launcher='none',
                                     amp=False,
                                     resume=None,
                                     auto_scale_lr=False,
                                     show=False,
                                     show_dir='d',
                                     interval=1,
                                     wait_time=1,
                                     cfg_options=options))
    # tools/train.py's order: read, the tool's options, finish.
    ours = read_config(CONFIG, options)
    enable_visualization(ours, 'd', False, 1, 1)
    finish_config(ours, options)
    assert ours.default_hooks.visualization.interval == 5
    assert ours.to_dict() == theirs.to_dict()


def test_options_into_a_section_the_tool_switched_off_are_left_out():
    """``--no-validate`` with options for the validation dataloader (the
    tests' COCO excerpt sets all three loaders): validation stays off, where
    MMPose's tool stops with mmengine's TypeError (merging into None)."""
    options = dict(coco_excerpt_options(), **{'train_cfg.max_epochs': 3})
    cfg = read_config(CONFIG, options)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    finish_config(cfg, options, phases=['train'])
    assert cfg.val_dataloader is None and cfg.train_cfg.max_epochs == 3


def test_cpu_distributed_keeps_the_configs_model_wrapper(monkeypatch):
    """On gloo only ``device_ids`` changes (mmengine would give the CPU
    model ``[LOCAL_RANK]``, which DDP refuses)."""
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '')  # no GPU check
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    # The process group exists, as under torchrun after the first call.
    monkeypatch.setattr(torch.distributed, 'is_initialized', lambda: True)
    own = dict(
        type='MMDistributedDataParallel',
        find_unused_parameters=True,
        static_graph=True)
    # MMPose's runtime (default_runtime.py) names NCCL.
    env_cfg = dict(dist_cfg=dict(backend='nccl'))
    cfg = Config(dict(model_wrapper_cfg=own, env_cfg=env_cfg))
    setup_distributed(cfg, 'pytorch')
    assert cfg.model_wrapper_cfg == dict(own, device_ids=None)
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    cfg = Config(dict(find_unused_parameters=True, env_cfg=env_cfg))
    setup_distributed(cfg, 'pytorch')
    # mmengine's wrapper for a config without one, as Runner.wrap_model
    # builds it.
    assert cfg.model_wrapper_cfg == dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=True,
        device_ids=None)
    # A config without env_cfg (not built on a runtime base) gets gloo too.
    cfg = Config(dict(model_wrapper_cfg=own))
    setup_distributed(cfg, 'pytorch')
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'


def test_only_the_tools_silence_the_pkg_resources_warning():
    """Importing the package leaves the warning filters as they were;
    ``setup_env`` (the tools') silences setuptools' deprecation warning,
    which mmengine's ``pkg_resources`` import otherwise prints twice on
    each start of a tool on a config with an ``mmpose::`` base."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        importlib.reload(sspose_mm.compat)
        assert warnings.filters == []
        setup_env()
        warnings.warn('pkg_resources is deprecated as an API', UserWarning)
        warnings.warn('another warning', UserWarning)
    assert [str(w.message) for w in caught] == ['another warning']
