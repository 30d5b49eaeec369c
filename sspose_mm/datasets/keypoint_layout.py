"""Feeding a dataset to a model trained on another keypoint layout (COCO's
17 on CrowdPose's 14): :class:`ToKeypointLayout` re-expresses samples in the
model's layout by name, ``flip_indices`` included, and
:class:`SharedKeypointCocoMetric` scores the shared keypoints
(:func:`shared_keypoint_mappings`). MMPose's ``KeypointConverter`` keeps the
source ``flip_indices`` for one-to-one mappings (flip testing would swap the
wrong heatmaps), and ``CocoMetric``'s ``gt_converter`` sets every
``num_keypoints`` to the new count, so people without shared keypoints count
as missed (ground truth as predictions: 0.80 AP instead of 1.0 on the
CrowdPose excerpt).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmpose.datasets.datasets.utils import parse_pose_metainfo
from mmpose.evaluation.functional import transform_ann
from mmpose.evaluation.metrics import CocoMetric
from mmpose.registry import METRICS, TRANSFORMS

from ..errors import ConfigError


def keypoint_names(metainfo: dict) -> List[str]:
    """Names in index order of a metainfo (raw, ``from_file`` or parsed)."""
    if 'keypoint_id2name' not in metainfo:
        metainfo = parse_pose_metainfo(dict(metainfo))
    id2name = metainfo['keypoint_id2name']
    return [id2name[i] for i in range(len(id2name))]


def name_mapping(source: Sequence[str],
                 target: Sequence[str]) -> List[Tuple[int, int]]:
    """``(source_index, target_index)`` of every name in both layouts."""
    target_index = {name: i for i, name in enumerate(target)}
    return [(i, target_index[name]) for i, name in enumerate(source)
            if name in target_index]


def shared_keypoint_mappings(dataset: Sequence[str],
                             model: Sequence[str]) -> Dict[str, dict]:
    """``CocoMetric``'s ``gt_converter`` and ``pred_converter`` keeping the
    keypoints both layouts name, in the dataset's order (and sigmas)."""
    shared = name_mapping(dataset, model)
    if not shared:
        raise ConfigError('the dataset and the model share no keypoint name')
    return dict(
        gt_converter=dict(
            num_keypoints=len(shared),
            mapping=[(d, j) for j, (d, _) in enumerate(shared)]),
        pred_converter=dict(
            num_keypoints=len(shared),
            mapping=[(m, j) for j, (_, m) in enumerate(shared)]))


def pipeline_num_keypoints(pipeline: Sequence[dict]) -> Optional[int]:
    """Keypoint count the model sees when ``pipeline`` (a dataset config's
    list of transform dicts) converts the layout, else None."""
    counts = [
        len(keypoint_names(step['target'])) for step in pipeline
        if step.get('type') == 'ToKeypointLayout'
    ]
    return counts[-1] if counts else None


@TRANSFORMS.register_module()
class ToKeypointLayout(BaseTransform):
    """Re-express a sample's keypoints (``(N, K_s, 2)`` and visibilities
    ``(N, K_s)``) in the ``target`` layout (``(N, K_t, ...)``), by name.

    Keypoints only ``target`` has get visibility 0 (no loss, not
    evaluated); those only ``source`` has are dropped. The
    ``_LAYOUT_FIELDS`` become the target's, so flipping uses its pairs.
    ``source`` and ``target`` are metainfo, e.g.
    ``dict(from_file='configs/_base_/datasets/crowdpose.py')``.
    """

    _LAYOUT_FIELDS = ('flip_indices', 'flip_pairs', 'upper_body_ids',
                      'lower_body_ids', 'skeleton_links',
                      'dataset_keypoint_weights')

    def __init__(self, source: dict, target: dict) -> None:
        self.target = parse_pose_metainfo(dict(target))
        self.source_names = keypoint_names(source)
        target_names = keypoint_names(self.target)
        mapping = name_mapping(self.source_names, target_names)
        if not mapping:
            raise ConfigError('ToKeypointLayout: source and target share no '
                              f'keypoint name (source {self.source_names}, '
                              f'target {target_names})')
        self.source_index, self.target_index = map(list, zip(*mapping))
        self.num_keypoints = len(target_names)

    def transform(self, results: dict) -> dict:
        keypoints = results['keypoints']
        if keypoints.shape[1] != len(self.source_names):
            raise ConfigError(
                f'ToKeypointLayout: the sample has {keypoints.shape[1]} '
                f'keypoints but the source layout {len(self.source_names)}')
        for key in ('keypoints', 'keypoints_visible'):
            array = results[key]
            converted = np.zeros(
                (len(array), self.num_keypoints) + array.shape[2:],
                dtype=array.dtype)
            converted[:, self.target_index] = array[:, self.source_index]
            results[key] = converted
        for field in self._LAYOUT_FIELDS:
            results[field] = self.target[field]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({len(self.source_names)} -> '
                f'{self.num_keypoints} keypoints, '
                f'{len(self.source_index)} shared)')


@METRICS.register_module()
class SharedKeypointCocoMetric(CocoMetric):
    """``CocoMetric`` (same arguments; needs ``ann_file``) whose
    ``gt_converter`` recounts each annotation's ``num_keypoints`` after the
    conversion, so annotations left without any are ignored as COCO
    evaluation ignores people without keypoints."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.gt_converter is not None and self.coco is None:
            raise ConfigError(f'{self.__class__.__name__} with a '
                              'gt_converter needs ann_file')
        self._gt_converted = False

    def compute_metrics(self, results: list) -> Dict[str, float]:
        converter = self.gt_converter
        if converter is not None and not self._gt_converted:
            for ann in self.coco.anns.values():
                transform_ann(ann, converter['num_keypoints'],
                              converter['mapping'])
                if 'keypoints' in ann:
                    ann['num_keypoints'] = int(
                        np.count_nonzero(np.asarray(ann['keypoints'])[2::3]))
            self._gt_converted = True
        # The parent would convert (and miscount) the annotations again.
        self.gt_converter = None
        try:
            return super().compute_metrics(results)
        finally:
            self.gt_converter = converter
