"""Every config names what runs: the image loader that names (and in
training skips) unusable image files, and the train loop that resumes
exactly. Read as written, a config means the same to MMPose's own tools,
which apply no rewrite of their own."""
from pathlib import Path
from typing import Iterator, Tuple

import pytest
from mmengine.config import Config
from mmpose.registry import LOOPS, TRANSFORMS

from conftest import REPO

EVERY_CONFIG = sorted(
    p for p in (REPO / 'configs').rglob('*.py') if '_base_' not in p.parts)


def pipelines(cfg: Config) -> Iterator[Tuple[str, list]]:
    """(phase, pipeline) of each dataset the dataloaders build, wrapped
    datasets (``dataset=``/``datasets=``) included."""
    for phase in ('train', 'val', 'test'):
        loader = cfg.get(f'{phase}_dataloader')
        todo = [loader['dataset']] if loader else []
        while todo:
            dataset = todo.pop()
            todo += dataset.get('datasets') or []
            if dataset.get('dataset'):
                todo.append(dataset['dataset'])
            if dataset.get('pipeline') is not None:
                yield phase, dataset['pipeline']


@pytest.mark.parametrize(
    'path', EVERY_CONFIG, ids=lambda p: str(p.relative_to(REPO / 'configs')))
def test_config_names_the_image_loader(path: Path):
    cfg = Config.fromfile(path)
    loaders = []
    for phase, pipeline in pipelines(cfg):
        types = [step['type'] for step in pipeline]
        assert 'LoadImage' not in types, phase
        loaders += [(phase, step) for step in pipeline
                    if step['type'] == 'LoadImageOrSkip']
    assert loaders, 'no pipeline loads images'
    for phase, step in loaders:
        # Training skips a bad image; a metric over fewer people is wrong.
        assert step['skip'] is (phase == 'train'), phase
    assert TRANSFORMS.get('LoadImageOrSkip') is not None


@pytest.mark.parametrize(
    'path', EVERY_CONFIG, ids=lambda p: str(p.relative_to(REPO / 'configs')))
def test_config_names_the_exact_resume_loop(path: Path):
    train_cfg = Config.fromfile(path).train_cfg
    assert train_cfg['type'] == 'ExactResumeEpochBasedTrainLoop'
    # mmengine's Runner refuses a loop with both a type and by_epoch.
    assert 'by_epoch' not in train_cfg
    assert train_cfg['max_epochs'] > 0
    assert LOOPS.get(train_cfg['type']) is not None


RUNTIME = Config.fromfile(REPO / 'configs/_base_/default_runtime.py')


@pytest.mark.parametrize(
    'path', EVERY_CONFIG, ids=lambda p: str(p.relative_to(REPO / 'configs')))
def test_config_keeps_the_package_runtime(path: Path):
    """Configs inheriting an MMPose recipe assign the package's runtime
    (configs/_base_/package_runtime.py) over the recipe's (mmengine merges
    no two bases setting one key): it must stay what
    configs/_base_/default_runtime.py says."""
    cfg = Config.fromfile(path)
    for key in ('default_scope', 'custom_imports', 'env_cfg', 'visualizer',
                'vis_backends', 'log_processor', 'log_level', 'backend_args'):
        assert cfg.get(key) == RUNTIME.get(key), key
    for name, hook in RUNTIME.default_hooks.items():
        assert cfg.default_hooks[name]['type'] == hook['type'], name
