"""Feeding a dataset to a model trained on another keypoint layout.

A COCO-trained model evaluated on CrowdPose predicts COCO's 17 keypoints
while the dataset annotates 14. :class:`ToKeypointLayout` re-expresses each
sample in the model's layout (matched by keypoint name), including the
``flip_indices`` that flip testing applies to the model's heatmaps; the
metric then compares the keypoints both layouts share
(:class:`SharedKeypointCocoMetric` with ``pred_converter``/``gt_converter``,
see :func:`shared_keypoint_mappings`).

Why not MMPose's own pieces as they are: ``KeypointConverter`` leaves
``flip_indices`` in the source layout for one-to-one mappings, so a
flip-tested model would swap the wrong heatmap channels; and ``CocoMetric``
with a ``gt_converter`` sets every converted annotation's ``num_keypoints``
to the new keypoint count, so people without any shared keypoint (e.g. no
keypoints at all) stop being ignored and count as missed: ground truth fed
back as predictions scores 0.80 AP instead of 1.0 on the CrowdPose excerpt.
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
    """``gt_converter`` and ``pred_converter`` of ``CocoMetric`` that keep
    the keypoints both layouts name, in the dataset's order.

    The metric's sigmas follow ``gt_converter`` from the dataset's.
    """
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
    """Re-express a sample's keypoints in another layout, by name.

    Keypoints of ``target`` that ``source`` lacks get visibility 0 (no
    loss, not evaluated); keypoints only ``source`` has are dropped. The
    layout's own fields (``flip_indices``, ``flip_pairs``,
    ``upper_body_ids``, ``lower_body_ids``, ``skeleton_links``,
    ``dataset_keypoint_weights``) are replaced by the target's, so flip
    augmentation and flip testing use the model's pairs.

    Required keys: ``keypoints`` (N, K_s, 2), ``keypoints_visible`` (N, K_s).
    Modified keys: those, now with K_t keypoints, and the layout fields.

    Args:
        source (dict): Metainfo of the dataset, e.g.
            ``dict(from_file='configs/_base_/datasets/crowdpose.py')``.
        target (dict): Metainfo of the model's layout.
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
        visible = results['keypoints_visible']
        converted = np.zeros((len(keypoints), self.num_keypoints, 2),
                             dtype=keypoints.dtype)
        converted_visible = np.zeros(
            (len(keypoints), self.num_keypoints) + visible.shape[2:],
            dtype=visible.dtype)
        converted[:, self.target_index] = keypoints[:, self.source_index]
        converted_visible[:, self.target_index] = visible[:, self.source_index]
        results['keypoints'] = converted
        results['keypoints_visible'] = converted_visible
        for field in self._LAYOUT_FIELDS:
            results[field] = self.target[field]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({len(self.source_names)} -> '
                f'{self.num_keypoints} keypoints, '
                f'{len(self.source_index)} shared)')


@METRICS.register_module()
class SharedKeypointCocoMetric(CocoMetric):
    """``CocoMetric`` whose ``gt_converter`` keeps ``num_keypoints`` right.

    The ground truth is converted once, and each annotation's
    ``num_keypoints`` counts its labelled keypoints after the conversion, so
    that annotations left without any are ignored as COCO evaluation
    ignores people without keypoints. Needs ``ann_file``. Arguments are
    ``CocoMetric``'s.
    """

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
