"""Suite ``pipeline``: a family's training data pipeline, ours vs MMPose's.

For each config (``CONFIG``, or :data:`DEFAULT_CONFIGS`), the CPU time on one
thread of what a data-loading worker does per sample
(``dataset.prepare_data(i)``) on MMPose's COCO excerpt and on synthetic
images, whole and transform by transform, against the same pipeline with
MMPose's transforms and codecs where ours replace them (:func:`stock_step`),
and target encoding alone (``encode:`` rows); see README.md, "Data
pipeline". CPU time is far less disturbed than wall time on shared cores.
``--batch`` is the samples per source; ``--threads`` and ``--input`` do not
apply.
"""
import argparse
import contextlib
import copy
import os.path as osp
import random
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import BaseDataset, Compose
from mmengine.registry import init_default_scope
from mmpose.registry import DATASETS, KEYPOINT_CODECS, TRANSFORMS

from ..errors import ConfigError
from .core import BENCHMARKS, Report, interleaved_medians

REPO = Path(__file__).resolve().parents[2]
COCO_EXCERPT = REPO / 'tests' / 'data' / 'coco'
# One training config per family (SSpose: fine-tuning; its MAE pretraining
# pipeline has no MMPose counterpart to compare with).
DEFAULT_CONFIGS = (
    'configs/transpose/td-hm_transpose-r-a4_1xb20-230e_coco-256x192.py',
    'configs/sharpose/td-hm_sharpose-b-a0.4_4xb64-210e_coco-256x192.py',
    'configs/sspose/td-hm_sspose-b_8xb64-210e_coco-256x192.py',
    'configs/higherpose/ae_higherpose-w32_1xb12-300e_coco-512x512.py',
)
# COCO's most common image size.
SYNTHETIC_IMAGE_SIZE = (640, 480)
DATA_INFO = 'data info'


def stock_targets(step: dict) -> List[dict]:
    """MMPose's ``GenerateTarget`` steps that could stand in for ``step``,
    the stock pipeline's first; none where its codec is MMPose's.

    TransPose: ``UDPHeatmap`` has its coordinates but cuts the Gaussian at 3
    sigma; ``MSRAHeatmap(unbiased=True)`` is DarkPose's untruncated Gaussian
    with non-UDP coordinates. HigherPose: one ``AssociativeEmbedding`` per
    resolution, ``multilevel`` (the same targets but for the keypoints'
    rounding, which costs the same).
    """
    codec = step['encoder']
    if codec['type'] == 'TransPoseHeatmap':
        return [
            dict(step, encoder=dict(codec, type='UDPHeatmap')),
            dict(step, encoder=dict(codec, type='MSRAHeatmap', unbiased=True))
        ]
    if codec['type'] == 'MultiResolutionAssociativeEmbedding':
        # Encoding settings only: our decoding options are not MMPose's.
        ours = KEYPOINT_CODECS.build(codec)
        encoders = [
            dict(
                type='AssociativeEmbedding',
                input_size=ours.input_size,
                heatmap_size=size,
                sigma=ours.sigma,
                use_udp=ours.use_udp)
            for size in [ours.heatmap_size] + ours.higher_heatmap_sizes
        ]
        if len(encoders) == 1:
            return [dict(step, encoder=encoders[0])]
        return [dict(step, encoder=encoders, multilevel=True)]
    return []


def stock_step(step: dict) -> dict:
    """The MMPose transform that ``step`` replaces, with the same settings;
    ``step`` itself when it is MMPose's or has no counterpart."""
    kind = step['type']
    if kind == 'LoadImageOrSkip':
        step = dict(step, type='LoadImage')
        step.pop('skip', None)
        return step
    if kind == 'ClippedRandomBBoxTransform':
        # The same probabilities and bounds (MMPose draws truncated normals).
        ours = TRANSFORMS.build(step)
        laws = ('shift_factor', 'shift_prob', 'scale_factor', 'scale_prob',
                'rotate_factor', 'rotate_prob')
        settings = {name: getattr(ours, name) for name in laws}
        return dict(type='RandomBBoxTransform', **settings)
    if kind == 'TransPoseAffine':
        return dict(
            type='TopdownAffine', input_size=step['input_size'], use_udp=True)
    if kind == 'GenerateTarget':
        return (stock_targets(step) or [step])[0]
    return step


def stock_pipeline(pipeline: List[dict]) -> List[dict]:
    return [stock_step(step) for step in pipeline]


def step_name(step: dict) -> str:
    """A pipeline entry as the report names it: ``'LoadImage'``,
    ``'GenerateTarget(AssociativeEmbedding x2)'``."""
    if step['type'] != 'GenerateTarget':
        return step['type']
    codec = step['encoder']
    if isinstance(codec, dict):
        unbiased = ', unbiased' if codec.get('unbiased') else ''
        return f'GenerateTarget({codec["type"]}{unbiased})'
    return f'GenerateTarget({codec[0]["type"]} x{len(codec)})'


def cpu_time(fn: Callable, *args) -> Tuple[Any, float]:
    """``fn(*args)`` and the CPU seconds it took."""
    start = time.process_time()
    result = fn(*args)
    return result, time.process_time() - start


def _reseed(index: int) -> None:
    """The same augmentation for sample ``index``: mmcv's and MMPose's
    transforms draw from numpy's and Python's global generators."""
    np.random.seed(index)
    random.seed(index)


def _prepare(dataset: BaseDataset, index: int) -> float:
    """CPU seconds of ``dataset.prepare_data(index)`` after reseeding."""
    _reseed(index)
    sample, seconds = cpu_time(dataset.prepare_data, index)
    if sample is None:
        raise RuntimeError(f'the pipeline dropped sample {index} of '
                           f'{dataset.ann_file}')
    return seconds


def whole_pass(dataset: BaseDataset,
               indices: List[int]) -> Callable[[], Dict[str, float]]:
    """A call returning the samples' total CPU seconds as ``{'whole': s}``."""
    return lambda: {'whole': sum(_prepare(dataset, i) for i in indices)}


def split_pass(dataset: BaseDataset, names: List[str],
               indices: List[int]) -> Callable[[], Dict[str, float]]:
    """A call returning the samples' CPU seconds of each transform (by
    ``names``) and of the rest of ``prepare_data`` (:data:`DATA_INFO`: the
    stored annotation and meta information)."""
    compose = dataset.pipeline

    def run() -> Dict[str, float]:
        seconds = [0.] * len(compose.transforms)

        def timed(data: dict) -> Optional[dict]:
            for index, transform in enumerate(compose.transforms):
                data, took = cpu_time(transform, data)
                seconds[index] += took
                if data is None:  # Compose's rule: a dropped sample stops
                    break
            return data

        dataset.pipeline = timed
        try:
            total = sum(_prepare(dataset, i) for i in indices)
        finally:
            dataset.pipeline = compose
        return {DATA_INFO: total - sum(seconds), **dict(zip(names, seconds))}

    return run


def encode_pass(transform: Callable,
                inputs: List[dict]) -> Callable[[], Dict[str, float]]:
    """A call returning the CPU seconds of ``transform`` (a
    ``GenerateTarget``) on a fresh copy of each of ``inputs`` (it only adds
    keys: a shallow copy)."""
    return lambda: {
        'encode': sum(cpu_time(transform, dict(r))[1] for r in inputs)
    }


@contextlib.contextmanager
def worker_process() -> Iterator[None]:
    """One thread for torch and OpenCV, as in a data-loading worker
    (MMPose's runtime sets OpenCV's 0: no pool); random states restored."""
    threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    states = np.random.get_state(), random.getstate()
    torch.set_num_threads(1)
    cv2.setNumThreads(0)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv2_threads)
        np.random.set_state(states[0])
        random.setstate(states[1])


@contextlib.contextmanager
def data_sources(num_images: int) -> Iterator[Dict[str, dict]]:
    """The data settings of the COCO excerpt and of ``num_images``
    synthetic images (in a temporary folder).

    Raises:
        ConfigError: No COCO excerpt (an installed package).
    """
    from ..synthetic import generate_synthetic_coco
    if not (COCO_EXCERPT / 'test_coco.json').is_file():
        raise ConfigError(f'the pipeline suite reads the COCO excerpt at '
                          f'{COCO_EXCERPT} (a source checkout has it).')
    with tempfile.TemporaryDirectory(prefix='sspose-pipeline-') as folder:
        generate_synthetic_coco(
            folder, {'train': num_images}, image_size=SYNTHETIC_IMAGE_SIZE)
        coco = dict(
            data_root=str(COCO_EXCERPT),
            ann_file='test_coco.json',
            data_prefix=dict(img=''))
        synthetic = dict(
            data_root=folder,
            ann_file='annotations/person_keypoints_train.json',
            data_prefix=dict(img='train/'))
        width, height = SYNTHETIC_IMAGE_SIZE
        yield {'COCO excerpt': coco, f'synthetic {width}x{height}': synthetic}


def training_dataset_cfg(cfg: Config) -> dict:
    """The config's training dataset, inside any wrappers."""
    dataset_cfg = cfg.train_dataloader.dataset
    while 'dataset' in dataset_cfg:
        dataset_cfg = dataset_cfg.dataset
    return dataset_cfg


def build_datasets(dataset_cfg: dict, source: dict,
                   pipelines: Dict[str, List[dict]]) -> Dict[str, BaseDataset]:
    """``dataset_cfg`` on ``source`` with each of ``pipelines``: shallow
    copies of one dataset (building one costs seconds: mmengine collects
    garbage after storing the annotations)."""
    first, *others = pipelines
    dataset = DATASETS.build(
        dict(copy.deepcopy(dataset_cfg), **source, pipeline=pipelines[first]))
    datasets = {first: dataset}
    for name in others:
        datasets[name] = copy.copy(dataset)
        datasets[name].pipeline = Compose(pipelines[name])
    return datasets


def bench_config(config: str, sources: Dict[str, dict],
                 args: argparse.Namespace, report: Report) -> None:
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmpose'))
    dataset_cfg = training_dataset_cfg(cfg)
    pipelines = {'ours': list(dataset_cfg.pipeline)}
    pipelines['stock'] = stock_pipeline(pipelines['ours'])
    names = {
        variant: [f'{i} {step_name(step)}' for i, step in enumerate(steps)]
        for variant, steps in pipelines.items()
    }
    replaced = [
        f'{step_name(a)} -> {step_name(b)}'
        for a, b in zip(pipelines['ours'], pipelines['stock']) if a != b
    ]
    name = Path(config).stem
    for title, source in sources.items():
        datasets = build_datasets(dataset_cfg, source, pipelines)
        indices = [i % len(datasets['ours']) for i in range(args.batch)]
        calls = {}
        for variant, data in datasets.items():
            calls[f'{variant} split'] = split_pass(data, names[variant],
                                                   indices)
            calls[variant] = whole_pass(data, indices)
        calls.update(
            encode_calls(datasets['ours'], pipelines['ours'], indices))
        medians = interleaved_medians(calls, warmup=1, repeat=args.repeat)
        report.section(f'pipeline: {name} on {title}, {args.batch} samples, '
                       f'one worker process (CPU time, median of '
                       f'{args.repeat})')
        per_sample = 1000 / args.batch  # seconds in total -> ms per sample
        whole = {v: medians[v]['whole'] * per_sample for v in pipelines}
        for variant in pipelines:
            report.row(f'{variant}: samples/s per worker',
                       1000 / whole[variant], 'samples/s')
        report.row('speed-up, ours / stock', whole['stock'] / whole['ours'],
                   'x', 'replaced: ' + (', '.join(replaced) or 'nothing'))
        for variant in pipelines:
            split = medians[f'{variant} split']
            report.row(f'{variant}: whole pipeline', whole[variant],
                       'ms/sample')
            report.row(f'{variant}: sum of steps',
                       sum(split.values()) * per_sample, 'ms/sample')
            for step, seconds in split.items():
                report.row(f'{variant} step: {step}', seconds * per_sample,
                           'ms/sample')
        for label, times in medians.items():
            if label.startswith('encode: '):
                report.row(label, times['encode'] * per_sample, 'ms/sample',
                           'target encoding alone, same keypoints')


def encode_calls(dataset: BaseDataset, pipeline: List[dict],
                 indices: List[int]) -> Dict[str, Callable]:
    """``encode: GenerateTarget(CODEC)`` calls timing our codec's
    ``GenerateTarget`` of ``pipeline`` and each of :func:`stock_targets`,
    on what reaches it for the samples ``indices``."""
    position = next(
        (i for i, step in enumerate(pipeline)
         if step['type'] == 'GenerateTarget' and stock_targets(step)), None)
    if position is None:
        return {}
    before = copy.copy(dataset)
    before.pipeline = Compose(dataset.pipeline.transforms[:position])
    inputs = []
    for index in indices:
        _reseed(index)
        inputs.append(before.prepare_data(index))
    steps = [pipeline[position]] + stock_targets(pipeline[position])
    return {
        f'encode: {step_name(step)}':
        encode_pass(TRANSFORMS.build(step), inputs)
        for step in steps
    }


@BENCHMARKS.register_module('pipeline')
def bench(args: argparse.Namespace, report: Report) -> None:
    """samples/s per data-loading worker of each family's training pipeline
    vs the same with MMPose's stock transforms and codecs, split by
    transform, on the COCO excerpt and synthetic images."""
    defaults = [str(REPO / config) for config in DEFAULT_CONFIGS]
    configs = [args.config] if args.config else defaults
    for config in configs:
        if not osp.isfile(config):
            raise ConfigError(f'config "{config}" does not exist.')
    with worker_process(), data_sources(args.batch) as sources:
        for config in configs:
            bench_config(config, sources, args, report)
