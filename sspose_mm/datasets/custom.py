"""Your own keypoint set: a COCO-format json plus a small keypoint file
(``.json``, ``.yaml``/``.yml`` or ``.py``) with ``keypoints`` (names),
``sigmas`` (OKS, one per keypoint) and optionally ``dataset_name``,
``skeleton``, ``flip_pairs`` (names or 0-based indices), ``upper_body`` (for
``RandomHalfBody``) and ``joint_weights``: docs/datasets.md, "Your own
keypoint set". :class:`CustomKeypointDataset` reads it (or an MMPose
``dataset_info`` file); ``tools/check_dataset.py`` runs
:func:`check_keypoint_dataset` before training.
"""
import json
import os.path as osp
from collections import Counter
from dataclasses import dataclass, field
from typing import ClassVar, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.config import Config
from mmpose.datasets.datasets.base import BaseCocoStyleDataset
from mmpose.datasets.datasets.utils import parse_pose_metainfo
from mmpose.registry import DATASETS

from ..errors import DataError
from .keypoint_layout import keypoint_names

_PALETTE = ((255, 128, 0), (51, 153, 255), (0, 255, 0), (255, 51, 255))


def _index(ref, names: Sequence[str], where: str) -> int:
    if isinstance(ref, str):
        if ref not in names:
            raise DataError(f'{where}: unknown keypoint "{ref}"; known: '
                            f'{", ".join(names)}')
        return names.index(ref)
    if isinstance(ref, (int, np.integer)) and 0 <= ref < len(names):
        return int(ref)
    raise DataError(f'{where}: {ref!r} is neither a keypoint name nor an '
                    f'index in [0, {len(names)})')


def _pairs(pairs, names: Sequence[str], where: str) -> List[Tuple[int, int]]:
    out = []
    for i, pair in enumerate(pairs or ()):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise DataError(f'{where}[{i}]: expected two keypoints, got '
                            f'{pair!r}')
        out.append(tuple(_index(p, names, f'{where}[{i}]') for p in pair))
    return out


def keypoint_dataset_info(spec: dict, source: str = 'keypoint file') -> dict:
    """MMPose ``dataset_info`` from the short keypoint spec (module doc);
    a :class:`DataError` names ``source`` and the offending entry."""
    names = spec.get('keypoints')
    if (not isinstance(names, (list, tuple)) or not names
            or not all(isinstance(n, str) and n for n in names)):
        raise DataError(f'{source}: "keypoints" must be a non-empty list of '
                        'names')
    names = list(names)
    repeated = [n for n, c in Counter(names).items() if c > 1]
    if repeated:
        raise DataError(f'{source}: keypoint names repeat: {repeated}')
    k = len(names)
    skeleton = _pairs(spec.get('skeleton'), names, f'{source}: skeleton')
    flips = _pairs(spec.get('flip_pairs'), names, f'{source}: flip_pairs')
    swap = {}
    for a, b in flips:
        if a == b or a in swap or b in swap:
            raise DataError(
                f'{source}: flip_pairs: "{names[a]}"/"{names[b]}" pairs a '
                'keypoint with itself or a keypoint that is already paired')
        swap[a], swap[b] = b, a
    sigmas = spec.get('sigmas')
    if sigmas is None:
        raise DataError(
            f'{source}: "sigmas" (one OKS sigma per keypoint) is missing; '
            'COCO uses 0.025 (eyes) to 0.107 (hips), 0.05 is a neutral '
            'start')
    weights = spec.get('joint_weights', [1.0] * k)
    for key, values in (('sigmas', sigmas), ('joint_weights', weights)):
        if (not isinstance(values, (list, tuple)) or len(values) != k or
                not all(isinstance(v, (int, float)) and v > 0
                        for v in values)):
            raise DataError(f'{source}: "{key}" must be {k} positive numbers '
                            'in keypoint order')
    upper = {
        _index(n, names, f'{source}: upper_body')
        for n in spec.get('upper_body') or ()
    }
    keypoint_info = {
        i:
        dict(
            name=name,
            id=i,
            color=list(_PALETTE[1 + (i > swap[i]) if i in swap else 0]),
            type=('upper' if i in upper else 'lower') if upper else '',
            swap=names[swap[i]] if i in swap else '')
        for i, name in enumerate(names)
    }
    skeleton_info = {
        i: dict(link=(names[a], names[b]), id=i, color=list(_PALETTE[3]))
        for i, (a, b) in enumerate(skeleton)
    }
    return dict(
        dataset_name=spec.get('dataset_name', 'custom'),
        keypoint_info=keypoint_info,
        skeleton_info=skeleton_info,
        joint_weights=[float(w) for w in weights],
        sigmas=[float(s) for s in sigmas])


def load_keypoint_file(path: str) -> dict:
    """``dataset_info`` of a keypoint file: the short spec or MMPose's own."""
    if not osp.isfile(path):
        raise DataError(f'keypoint file "{path}" does not exist')
    try:
        raw = Config.fromfile(path).to_dict()
    except Exception as error:  # noqa: BLE001 - any parse error is the file's
        raise DataError(f'keypoint file "{path}" could not be read: '
                        f'{error}') from error
    if 'dataset_info' in raw:
        return raw['dataset_info']
    raw.setdefault('dataset_name', osp.splitext(osp.basename(path))[0])
    return keypoint_dataset_info(raw, source=path)


@DATASETS.register_module()
class CustomKeypointDataset(BaseCocoStyleDataset):
    """MMPose's COCO-style dataset with the keypoints of
    ``metainfo=dict(from_file='keypoints.json')`` (see the module doc).

    Raises :class:`~sspose_mm.errors.DataError` naming an annotation whose
    keypoint count differs from the file's.
    """

    METAINFO: dict = dict()

    @classmethod
    def _load_metainfo(cls, metainfo: Optional[dict] = None) -> dict:
        if not metainfo or 'from_file' not in metainfo:
            raise DataError(
                'CustomKeypointDataset needs metainfo=dict(from_file='
                '"path/to/keypoints.json") naming its keypoints')
        info = load_keypoint_file(metainfo['from_file'])
        return super()._load_metainfo(info)

    def _load_annotations(self) -> Tuple[List[dict], List[dict]]:
        instances, images = super()._load_annotations()
        k = self._metainfo['num_keypoints']
        for instance in instances:
            if instance['keypoints'].shape[1] != k:
                raise DataError(
                    f'{self.ann_file}: annotation {instance.get("id")} has '
                    f'{instance["keypoints"].shape[1]} keypoints but the '
                    f'keypoint file names {k}')
        return instances, images


@dataclass
class Finding:
    """One row of the check table: how many problems a check found, the
    first few of them."""

    OK: ClassVar[str] = 'ok'
    WARNING: ClassVar[str] = 'warning'
    ERROR: ClassVar[str] = 'error'

    check: str
    severity: str = OK
    count: int = 0
    examples: List[str] = field(default_factory=list)


def _finding(check: str,
             problems: List[str],
             severity: str = Finding.ERROR) -> Finding:
    return Finding(check, severity if problems else Finding.OK, len(problems),
                   problems[:3])


def _check_flip_pairs(metainfo: dict) -> List[str]:
    """Left/right names that are not flip pairs of each other, and pairs
    that are not mutual, in MMPose's parsed ``metainfo``."""
    names, flip = keypoint_names(metainfo), metainfo['flip_indices']
    problems = []
    for i, name in enumerate(names):
        partner = names[flip[i]]
        for side, other in (('left', 'right'), ('right', 'left')):
            mirror = name.replace(side, other)
            if side in name and mirror in names and partner != mirror:
                problems.append(f'"{name}" flips to "{partner}", not '
                                f'"{mirror}"')
        if flip[flip[i]] != i:
            problems.append(f'"{name}" flips to "{partner}", which flips to '
                            f'"{names[flip[flip[i]]]}"')
    return problems


def check_keypoint_dataset(ann_file: str,
                           img_dir: str,
                           metainfo: dict,
                           model_keypoints: Optional[int] = None,
                           box_tolerance: float = 1.0) -> List[Finding]:
    """Check a COCO-format keypoint dataset; one :class:`Finding` per check:
    images on disk, keypoint count (annotations, categories, sigmas, the
    model), flip pairs, ids, boxes inside their image (up to
    ``box_tolerance`` pixels), visibility flags, keypoints inside their
    image. ``metainfo``: MMPose's parsed form or a ``dataset_info``.
    Raises :class:`DataError` if ``ann_file`` is missing or not COCO json.
    """
    if not osp.isfile(ann_file):
        raise DataError(f'annotation file "{ann_file}" does not exist')
    try:
        with open(ann_file) as f:
            coco = json.load(f)
    except ValueError as error:
        raise DataError(f'annotation file "{ann_file}" is not valid json: '
                        f'{error}') from error
    if not isinstance(coco, dict) or not {'images', 'annotations'
                                          } <= set(coco):
        raise DataError(f'annotation file "{ann_file}" is not COCO format '
                        '(needs "images" and "annotations")')
    if 'keypoint_id2name' not in metainfo:  # not parsed yet
        metainfo = parse_pose_metainfo(dict(metainfo))
    k = metainfo['num_keypoints']
    images = {img.get('id'): img for img in coco['images']}
    missing = [
        img.get('file_name', f'id {img.get("id")}') for img in coco['images']
        if not osp.isfile(osp.join(img_dir, img.get('file_name', '')))
    ]
    count = []
    for ann in coco['annotations']:
        n = len(ann.get('keypoints', []))
        if n != 3 * k:
            count.append(f'annotation {ann.get("id")}: {n / 3:g} keypoints')
    for cat in coco.get('categories', []):
        if 'keypoints' in cat and len(cat['keypoints']) != k:
            count.append(f'category {cat.get("id")} names '
                         f'{len(cat["keypoints"])} keypoints')
    if len(metainfo['sigmas']) != k:
        count.append(f'{len(metainfo["sigmas"])} sigmas')
    if model_keypoints is not None and model_keypoints != k:
        count.append(f'the model predicts {model_keypoints}')
    ids = Counter(ann.get('id') for ann in coco['annotations'])
    id_problems = [
        f'annotation id {i} used {c} times' for i, c in ids.items() if c > 1
    ]
    id_problems += [
        f'annotation {ann.get("id")}: unknown image '
        f'{ann.get("image_id")}' for ann in coco['annotations']
        if ann.get('image_id') not in images
    ]
    boxes, flags, outside = [], [], []
    for ann in coco['annotations']:
        img = images.get(ann.get('image_id'))
        kpts = np.asarray(ann.get('keypoints', []), dtype=float)
        if img is None or len(kpts) != 3 * k:
            continue  # reported above
        w, h = img.get('width', np.inf), img.get('height', np.inf)
        bbox = ann.get('bbox')
        if bbox is not None:
            x, y, bw, bh = bbox
            if (bw <= 0 or bh <= 0 or x < -box_tolerance or y < -box_tolerance
                    or x + bw > w + box_tolerance
                    or y + bh > h + box_tolerance):
                boxes.append(f'annotation {ann["id"]}: box {bbox} in '
                             f'{w}x{h} image {img.get("file_name")}')
        kpts = kpts.reshape(k, 3)
        if not set(kpts[:, 2].tolist()) <= {0, 1, 2}:
            flags.append(f'annotation {ann["id"]}: visibility '
                         f'{sorted(set(kpts[:, 2].tolist()) - {0, 1, 2})}')
        labelled = kpts[kpts[:, 2] > 0, :2]
        off = ((labelled < 0) |
               (labelled > [w - 1 + box_tolerance, h - 1 + box_tolerance
                            ])).any(1)
        if off.any():
            outside.append(f'annotation {ann["id"]}: {int(off.sum())} '
                           'keypoints outside the image')
    unlabelled = sum(1 for ann in coco['annotations']
                     if not any(ann.get('keypoints', [])[2::3]))
    return [
        _finding(f'images exist in {img_dir}', missing),
        _finding(f'keypoint count is {k}', count),
        _finding('flip pairs are symmetric left/right',
                 _check_flip_pairs(metainfo)),
        _finding('ids are unique and images known', id_problems),
        _finding('boxes inside their images', boxes),
        _finding('visibility flags are 0, 1 or 2', flags),
        _finding('labelled keypoints inside their images', outside,
                 Finding.WARNING),
        Finding('annotations with keypoints',
                Finding.WARNING if unlabelled else Finding.OK, unlabelled, [
                    f'{unlabelled} of {len(coco["annotations"])} have none '
                    '(skipped in training)'
                ] if unlabelled else [])
    ]


def findings_table(findings: Sequence[Finding]) -> str:
    """The findings as one plain-text table."""
    rows = [('check', 'result', 'count', 'examples')]
    for f in findings:
        rows.append(
            (f.check, f.severity.upper() if f.severity != Finding.OK else 'ok',
             str(f.count), '; '.join(f.examples)))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = []
    for i, row in enumerate(rows):
        lines.append('  '.join(c.ljust(w)
                               for c, w in zip(row, widths)) + '  ' + row[3])
        if i == 0:
            lines.append('  '.join('-' * w for w in widths) + '  ' + '-' * 8)
    return '\n'.join(line.rstrip() for line in lines)
