"""Checks run by the tools before a Runner is built: a failure is a
:class:`ConfigError` or :class:`DataError` naming the config entry and the
file, not a traceback from deep inside."""
import ast
import difflib
import inspect
import json
import os.path as osp
import types
import typing
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, Optional, Tuple

import torch
from mmengine.config import Config

from ..datasets.keypoint_layout import pipeline_num_keypoints
from ..errors import ConfigError, DataError

COCO_HINT = ('COCO 2017 images and annotations are at '
             'https://cocodataset.org/#download and the person detections '
             'file in MMPose\'s model zoo; data/README.md shows the layout, '
             'or point the config elsewhere with --cfg-options.')


def _registries() -> Iterator:
    """Every mmengine registry and its descendants (mmpose, mmdet, ...)."""
    import mmengine.registry as root_module
    from mmengine.registry import Registry
    from mmpose.utils import register_all_modules
    register_all_modules(init_default_scope=False)

    def walk(registry):
        yield registry
        for child in registry.children.values():
            yield from walk(child)

    for root in vars(root_module).values():
        if isinstance(root, Registry):
            yield from walk(root)


def registered(type_name: str) -> Optional[Any]:
    """The class or function registered as ``type_name`` in any registry."""
    scope, _, name = type_name.rpartition('.')
    return next(
        (registry.module_dict[name] for registry in _registries()
         if scope in ('', registry.scope) and name in registry.module_dict),
        None)


def closest_registered(type_name: str,
                       registry_name: Optional[str] = None,
                       cutoff: float = 0.6) -> Optional[str]:
    """The registered name most like ``type_name`` (in registries called
    ``registry_name``, e.g. 'model', if given), or None."""
    names: set[str] = set()
    for registry in _registries():
        if registry_name in (None, registry.name):
            names.update(registry.module_dict)
    close = difflib.get_close_matches(
        type_name, sorted(names), n=1, cutoff=cutoff)
    return close[0] if close else None


def _arguments(built: Optional[Callable]) -> Iterator[Tuple[str, Any]]:
    """(name, annotation) of each argument of a function or of a class's
    constructors (most derived first). String annotations are evaluated one
    by one (``inspect``'s ``eval_str`` gives up at the first unresolvable)."""
    functions = ([klass.__init__ for klass in built.__mro__]
                 if inspect.isclass(built) else [built] if built else [])
    for function in functions:
        try:
            parameters = inspect.signature(function).parameters
        except (TypeError, ValueError):  # a builtin without a signature
            continue
        for name, parameter in parameters.items():
            annotation = parameter.annotation
            if isinstance(annotation, str):
                try:
                    annotation = eval(annotation,
                                      getattr(function, '__globals__', {}))
                except Exception:  # noqa: BLE001 - any unresolvable name
                    annotation = None
            yield name, annotation


def config_dicts(node: Any, path: str = '') -> Iterator[Tuple[str, dict]]:
    """Every dict of a config, depth first, with its dotted path (the root
    ``''``, list items by index: ``'train_pipeline.2'``)."""
    if isinstance(node, Config):
        node = dict(node.items())
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from config_dicts(value, f'{path}.{key}' if path else key)
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from config_dicts(value, f'{path}.{index}')


def check_module_types(cfg: Config) -> None:
    """Stop at a ``type`` no registry knows but one nearly matches (a typo);
    :func:`sspose_mm.cli.report.explain` completes other unknown types."""
    for path, node in config_dicts(cfg):
        type_name = node.get('type')
        if isinstance(type_name, str) and registered(type_name) is None:
            close = closest_registered(type_name, cutoff=0.8)
            if close:
                raise ConfigError(
                    f'{path}.type: "{type_name}" is not a registered '
                    f'module type; did you mean "{close}"?')


def _builder(node: dict, path: str) -> Optional[Callable]:
    """What ``node`` is built with: its ``type``, or for a ``path`` that
    names none (but '') what mmengine's Runner builds from it."""
    type_name = node.get('type')
    if callable(type_name):
        return type_name
    if isinstance(type_name, str):
        return registered(type_name)
    if path.endswith('_dataloader') and '.' not in path:
        return torch.utils.data.DataLoader
    implied = {'optim_wrapper': 'OptimWrapper'}
    if path == 'train_cfg' and 'by_epoch' in node:
        implied['train_cfg'] = ('EpochBasedTrainLoop'
                                if node['by_epoch'] else 'IterBasedTrainLoop')
    return registered(implied[path]) if path in implied else None


def _number_kind(annotation: Any) -> Optional[type]:
    """``int`` for an annotated whole number, ``float`` for any number, else
    None (ignoring None, often not annotated, and tensors, never config)."""
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    kinds = set(typing.get_args(annotation)) if union else {annotation}
    kinds -= {type(None), torch.Tensor}
    if kinds == {int}:
        return int
    return float if kinds in ({float}, {int, float}) else None


def check_value_types(cfg: Config,
                      options: Optional[Dict[str, Any]] = None) -> None:
    """Arguments annotated ``int`` (``float``) must get a whole number (any
    number; ``max_epochs='abc'`` fails deep in the build or in training),
    else a :class:`ConfigError` names the key, value, source and need."""
    for path, node in config_dicts(cfg):
        built = _builder(node, path)
        kinds: Dict[str, Optional[type]] = {}
        for name, annotation in _arguments(built):
            kinds.setdefault(name, _number_kind(annotation))
        for key, value in node.items():
            kind = kinds.get(key)
            if kind is None or value is None or (isinstance(
                    value, kind if kind is int else (int, float))):
                continue
            where = f'{path}.{key}'
            source = (f'set by --cfg-options for {cfg.filename}' if any(
                where == option or where.startswith(f'{option}.')
                for option in options or ()) else f'in {cfg.filename}')
            raise ConfigError(
                f'{where}={value!r} ({source}) is not '
                f'{"a whole number" if kind is int else "a number"}: {key} '
                f'of {getattr(built, "__name__", built)} takes '
                f'{"an int" if kind is int else "a float"}.')


def syntax_error_in(path: str, child: Optional[str] = None) -> Optional[str]:
    """One sentence for the first syntax error in the config ``path`` or its
    ``_base_`` files (mmengine's says ``File "<unknown>"``), or None."""
    if not osp.isfile(path):
        return None
    if path.endswith('.py'):
        try:
            ast.parse(Path(path).read_text(encoding='utf-8'), filename=path)
        except SyntaxError as error:
            code = (error.text or '').strip()
            return (f'syntax error in the config file {path}, line '
                    f'{error.lineno}: {error.msg}' +
                    (f' ({code})' if code else '') +
                    (f'; it is a _base_ of {child}' if child else '') + '.')
    for base in Config._get_base_files(path):
        found = syntax_error_in(
            Config._get_cfg_path(base, path)[0], child or path)
        if found:
            return found
    return None


def check_cfg_options(cfg: Config, options: Optional[Dict[str, Any]]) -> None:
    """Reject ``--cfg-options`` keys that look like typos of existing keys
    (``train_cfg.max_epoch``), unless they are arguments of the entry's
    ``type``; the build names other unknown keys."""
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
            elif isinstance(node, dict) and part in dict(
                    _arguments(_builder(node, ''))):
                break
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


def leaf_datasets(dataset_cfg: dict, where: str) -> Iterable:
    """Leaf dataset configs, looking inside wrappers (Repeat, Combined)."""
    if 'datasets' in dataset_cfg:
        for i, sub in enumerate(dataset_cfg['datasets']):
            yield from leaf_datasets(sub, f'{where}.datasets.{i}')
    elif 'dataset' in dataset_cfg:
        yield from leaf_datasets(dataset_cfg['dataset'], f'{where}.dataset')
    else:
        yield dataset_cfg, where


def dataset_files(leaf: dict) -> Dict[str, str]:
    """``ann_file``, ``bbox_file``, ``img_dir`` (or '') of a leaf dataset
    config, ``data_root`` joined to all but the detection file, as MMPose."""
    root = leaf.get('data_root') or ''
    ann_file = leaf.get('ann_file')
    return dict(
        ann_file=osp.join(root, ann_file) if ann_file else '',
        bbox_file=leaf.get('bbox_file') or '',
        img_dir=osp.join(root, (leaf.get('data_prefix') or {}).get('img', '')))


def check_dataset_files(dataset_cfg: dict, where: str) -> None:
    """Every file a dataset config (or evaluator) names must exist."""
    for leaf, leaf_where in leaf_datasets(dataset_cfg, where):
        ann_file, bbox_file, img_dir = dataset_files(leaf).values()
        named = [
            ('data_root', leaf.get('data_root'), '', osp.isdir, ''),
            ('annotation file', ann_file, '.ann_file', osp.isfile, ''),
            ('person detection file', bbox_file, '.bbox_file', osp.isfile,
             ' (set it to None to test with ground-truth boxes)'),
            ('image folder', img_dir, '.data_prefix.img', osp.isdir, ''),
        ]
        for what, path, key, exists, note in named:
            if path and not exists(path):
                raise ConfigError(f'{what} "{path}" of {leaf_where}{key} does '
                                  f'not exist{note}. {COCO_HINT}')
            if path and key == '.ann_file' and osp.getsize(path) == 0:
                raise DataError(
                    f'annotation file "{path}" of {leaf_where}.ann_file is '
                    'empty (0 bytes): get it again.')


def dataset_metainfo(leaf: dict) -> dict:
    """The metainfo (with ``num_keypoints``) the class of a leaf dataset
    config loads (``_load_metainfo``); {} for a type no registry knows."""
    from mmpose.registry import DATASETS
    dataset_cls = DATASETS.get(leaf.get('type', ''))
    if dataset_cls is None or not hasattr(dataset_cls, '_load_metainfo'):
        return {}
    metainfo = leaf.get('metainfo')
    try:
        return dataset_cls._load_metainfo(
            dict(metainfo) if metainfo is not None else None)
    except (KeyError, ValueError, TypeError) as error:
        # MMPose's parser fails with a bare KeyError on a swap or skeleton
        # entry naming a keypoint the file does not define.
        raise DataError(f'the keypoint layout {dict(metainfo or {})} of '
                        f'{leaf.get("type")} cannot be read by MMPose '
                        f'({type(error).__name__}: {error}).') from error


def check_keypoint_count(cfg: Config, dataset_cfg: dict, where: str) -> None:
    """The head must predict as many keypoints as the dataset has, or as
    its pipeline converts them to (``ToKeypointLayout``)."""
    head = cfg.get('model', {}).get('head', {})
    model_k = head.get('out_channels', head.get('num_keypoints'))
    data_k = pipeline_num_keypoints(dataset_cfg.get('pipeline') or [])
    if data_k is None:
        leaf, _ = next(iter(leaf_datasets(dataset_cfg, '')))
        data_k = dataset_metainfo(leaf).get('num_keypoints')
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
        if phase != 'train':
            check_detections_match_images(loader['dataset'], where)
        evaluator = cfg.get(f'{phase}_evaluator')
        if phase != 'train' and isinstance(evaluator, dict):
            check_dataset_files(
                dict(ann_file=evaluator.get('ann_file')), f'{phase}_evaluator')


def find_malformed_json(cfg: Config) -> Optional[str]:
    """One sentence naming the first annotation or detection file of the
    config (datasets, evaluators) that is not valid JSON; or None."""
    files = (path for _, node in config_dicts(cfg)
             for name, path in dataset_files(node).items()
             if name in ('ann_file', 'bbox_file'))
    for path in dict.fromkeys(files):
        if not path.endswith('.json') or not osp.isfile(path):
            continue
        try:
            with open(path, 'rb') as f:
                json.load(f)
        except (ValueError, UnicodeDecodeError) as error:
            return (f'the annotation file {path} is not valid JSON ({error});'
                    ' it is probably truncated (an interrupted download or '
                    'copy) or not an annotation file: get it again.')
    return None


def check_detections_match_images(dataset_cfg: dict, where: str) -> None:
    """A person-detection file must name images of the annotation file."""
    for leaf, leaf_where in leaf_datasets(dataset_cfg, where):
        ann_file, bbox_file, _ = dataset_files(leaf).values()
        if not bbox_file or not ann_file:
            continue
        try:
            with open(ann_file) as f:
                image_ids = {image['id'] for image in json.load(f)['images']}
            with open(bbox_file) as f:
                detected = [det['image_id'] for det in json.load(f)]
        except (ValueError, KeyError, TypeError) as error:
            raise DataError(
                f'{leaf_where}: cannot read image ids from "{ann_file}" or '
                f'"{bbox_file}" ({type(error).__name__}: {error}); the '
                'annotation file needs "images" with "id"s and the detection '
                'file a list of COCO results with "image_id".') from error
        unknown = sorted(set(detected) - image_ids)
        if unknown:
            count = sum(image_id in set(unknown) for image_id in detected)
            raise DataError(
                f'{leaf_where}.bbox_file "{bbox_file}" has {count} of its '
                f'{len(detected)} boxes on {len(unknown)} images that '
                f'"{ann_file}" does not have (image ids {unknown[:5]}'
                f'{" ..." if len(unknown) > 5 else ""}): is it the detection'
                ' file of another dataset or split?')


# The default hooks mmengine registers (Runner.register_default_hooks) and
# removes when set to None; any other None stops it with an AssertionError.
MMENGINE_DEFAULT_HOOKS = ('runtime_info', 'timer', 'sampler_seed', 'logger',
                          'param_scheduler', 'checkpoint')


def check_switched_off_hooks(cfg: Config) -> None:
    """``default_hooks.<name>=None`` only for mmengine's own defaults."""
    for name, hook in (cfg.get('default_hooks') or {}).items():
        if hook is None and name not in MMENGINE_DEFAULT_HOOKS:
            raise ConfigError(
                f"default_hooks.{name}=None: mmengine's Runner removes only "
                f'its own default hooks ({", ".join(MMENGINE_DEFAULT_HOOKS)}) '
                'this way and stops on any other. Switch a hook off with '
                f'default_hooks.{name}.enable=False where it has that argument'
                " (this package's hooks, MMPose's visualisation hooks).")
