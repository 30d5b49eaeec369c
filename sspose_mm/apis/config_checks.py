"""Checks run by the tools before a Runner is built.

Each failure is a :class:`ConfigError` naming the config entry and the file,
instead of a traceback from deep inside the dataset or model code.
"""
import difflib
import os.path as osp
from typing import Any, Dict, Iterable, Optional

from mmengine.config import Config

from ..errors import ConfigError

COCO_HINT = ('COCO 2017 images and annotations are at '
             'https://cocodataset.org/#download and the person detections '
             'file in MMPose\'s model zoo; data/README.md shows the layout, '
             'or point the config elsewhere with --cfg-options.')


def check_cfg_options(cfg: Config, options: Optional[Dict[str, Any]]) -> None:
    """Reject ``--cfg-options`` keys that look like typos of existing keys.

    A key the config lacks is accepted when nothing close to it exists (it
    may be a new constructor argument; if it is not, the build fails with
    an "unknown config key" message), but a near miss such as
    ``train_cfg.max_epoch`` would be silently ignored or fail deep in the
    build, so it stops here with the suggestion.
    """
    for key in options or {}:
        node: Any = dict(cfg.items())
        path = []
        for part in key.split('.'):
            if isinstance(node, (list, tuple)) and part.isdigit():
                if int(part) >= len(node):
                    raise ConfigError(
                        f'--cfg-options {key}: index {part} is out of range, '
                        f'{".".join(path)} has {len(node)} entries.')
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                siblings = list(node.keys()) if isinstance(node, dict) else []
                close = difflib.get_close_matches(part, siblings, n=1)
                if close:
                    raise ConfigError(
                        f'--cfg-options {key}: the config has no key "{part}" '
                        f'under {".".join(path) or "the top level"} (did you '
                        f'mean "{".".join(path + close)}"?).')
                break
            path.append(part)


def _datasets(dataset_cfg: dict, where: str) -> Iterable:
    """Leaf dataset configs, looking inside wrappers (Repeat, Combined)."""
    if 'datasets' in dataset_cfg:
        for i, sub in enumerate(dataset_cfg['datasets']):
            yield from _datasets(sub, f'{where}.datasets.{i}')
    elif 'dataset' in dataset_cfg:
        yield from _datasets(dataset_cfg['dataset'], f'{where}.dataset')
    else:
        yield dataset_cfg, where


def _resolve(data_root: str, path: str) -> str:
    return path if osp.isabs(path) or not data_root else osp.join(
        data_root, path)


def check_dataset_files(dataset_cfg: dict, where: str) -> None:
    """Every file a dataset config names must exist."""
    for leaf, leaf_where in _datasets(dataset_cfg, where):
        data_root = leaf.get('data_root', '') or ''
        if data_root and not osp.isdir(data_root):
            raise ConfigError(f'data_root "{data_root}" of {leaf_where} does '
                              f'not exist. {COCO_HINT}')
        ann_file = leaf.get('ann_file')
        if ann_file and not osp.isfile(_resolve(data_root, ann_file)):
            raise ConfigError(
                f'annotation file "{_resolve(data_root, ann_file)}" of '
                f'{leaf_where}.ann_file does not exist. {COCO_HINT}')
        bbox_file = leaf.get('bbox_file')
        if bbox_file and not osp.isfile(bbox_file):
            raise ConfigError(
                f'person detection file "{bbox_file}" of {leaf_where}.bbox_file'
                ' does not exist (set it to None to test with ground-truth '
                f'boxes). {COCO_HINT}')
        img_dir = (leaf.get('data_prefix') or {}).get('img')
        if img_dir is not None and not osp.isdir(_resolve(data_root, img_dir)):
            raise ConfigError(
                f'image folder "{_resolve(data_root, img_dir)}" of '
                f'{leaf_where}.data_prefix.img does not exist. {COCO_HINT}')


def dataset_num_keypoints(dataset_cfg: dict) -> Optional[int]:
    """Keypoint count of a dataset config's metainfo, if it declares one."""
    from mmpose.registry import DATASETS
    leaf, _ = next(iter(_datasets(dataset_cfg, '')))
    dataset_cls = DATASETS.get(leaf.get('type', ''))
    if dataset_cls is None or not hasattr(dataset_cls, '_load_metainfo'):
        return None
    metainfo = leaf.get('metainfo')
    metainfo = dataset_cls._load_metainfo(
        dict(metainfo) if metainfo is not None else None)
    return metainfo.get('num_keypoints')


def check_keypoint_count(cfg: Config, dataset_cfg: dict, where: str) -> None:
    """The head must predict as many keypoints as the dataset has."""
    head = cfg.get('model', {}).get('head', {})
    model_k = head.get('out_channels', head.get('num_keypoints'))
    data_k = dataset_num_keypoints(dataset_cfg)
    if model_k is not None and data_k is not None and model_k != data_k:
        raise ConfigError(
            f'the dataset of {where} has {data_k} keypoints but the model '
            f'predicts {model_k} (model.head.out_channels): use a config made '
            'for this dataset or set out_channels to match.')


def check_config(cfg: Config, phases: Iterable[str]) -> None:
    """Check the dataloaders of ``phases`` ('train', 'val', 'test')."""
    for phase in phases:
        loader = cfg.get(f'{phase}_dataloader')
        if not loader:
            continue
        where = f'{phase}_dataloader.dataset'
        check_dataset_files(loader['dataset'], where)
        check_keypoint_count(cfg, loader['dataset'], where)
        evaluator = cfg.get(f'{phase}_evaluator')
        if phase != 'train' and isinstance(evaluator, dict):
            ann_file = evaluator.get('ann_file')
            if ann_file and not osp.isfile(ann_file):
                raise ConfigError(
                    f'annotation file "{ann_file}" of {phase}_evaluator.'
                    f'ann_file does not exist. {COCO_HINT}')
