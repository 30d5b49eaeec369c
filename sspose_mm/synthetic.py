"""Synthetic people: a deterministic COCO-format top-down keypoint dataset.

A 3D stick body with human proportions is posed by forward kinematics, turned
to a front, back or profile view, projected orthographically and painted with
OpenCV on a background whose clutter a :class:`SceneStyle` sets. The labels
are exact and follow COCO's conventions:

* ``keypoints``: ``(x, y, v)`` per keypoint of the :class:`SkeletonLayout`;
  ``v=0`` (``x=y=0``) outside the image or for a face point turned away from
  the camera (COCO does not label those either). Otherwise the pixel of the
  depth-ordered part map decides: ``v=2`` when it shows a part the keypoint
  belongs to (the elbow on upper arm or forearm), ``v=1`` when a nearer
  person, an occluder or another part of the same person (an arm before the
  hip, the torso before the far shoulder in profile) covers it.
* ``bbox``, ``area`` and ``segmentation`` describe the *amodal* silhouette
  (all of the rendered body, ignoring what covers it) clipped to the image,
  so every labelled keypoint lies in the box, as top-down crops need.

Each image draws from its own generator seeded with ``(seed, image_id)``
(its detections: ``(seed, image_id, 1)``), independent of generation order
and other splits: a seed gives byte-identical files on the same library
versions.
"""
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .fileio import atomic_write

__all__ = [
    'SkeletonLayout', 'COCO_LAYOUT', 'MPII_LAYOUT', 'COCO_FEET_LAYOUT',
    'LAYOUTS', 'BODY_ANCHORS', 'SceneStyle', 'STYLES', 'GENERATOR_VERSION',
    'keypoint_file_path', 'generate_synthetic_coco', 'ensure_synthetic_coco',
    'generation_params', 'is_generated', 'render_scene', 'Scene',
    'split_image_ids'
]

# Bump when the output for a seed changes: stale data is then regenerated.
GENERATOR_VERSION = 1

PathLike = Union[str, os.PathLike]

# --- Kinematic body: anchors and the parts that own them ---

PART_NAMES: Tuple[str, ...] = ('torso', 'neck', 'head', 'left_upper_arm',
                               'left_forearm', 'left_hand', 'right_upper_arm',
                               'right_forearm', 'right_hand', 'left_thigh',
                               'left_shin', 'left_foot', 'right_thigh',
                               'right_shin', 'right_foot')
_PART_INDEX = {name: i for i, name in enumerate(PART_NAMES)}
# Part map codes: person * _CODE_STRIDE + part + 1; 0 background.
_CODE_STRIDE = 16
_OCCLUDER_CODE = -1

# Body points a layout can place keypoints on: the parts whose pixels show
# the point, and its OKS sigma (COCO's; CrowdPose's for head top and neck;
# else the nearest COCO joint's). Weighted keypoints take the weighted mean.
_ANCHORS: Dict[str, Tuple[Tuple[str, ...], float]] = {
    'nose': (('head', ), 0.026),
    'left_eye': (('head', ), 0.025),
    'right_eye': (('head', ), 0.025),
    'left_ear': (('head', ), 0.035),
    'right_ear': (('head', ), 0.035),
    'head_top': (('head', ), 0.079),
    'neck': (('neck', 'torso', 'head'), 0.079),
    'pelvis': (('torso', 'left_thigh', 'right_thigh'), 0.107),
}
# The anchors of each side, with the parts of that side (and the torso).
_SIDED_ANCHORS = {
    'shoulder': (('torso', 'upper_arm'), 0.079),
    'elbow': (('upper_arm', 'forearm'), 0.072),
    'wrist': (('forearm', 'hand'), 0.062),
    'hand': (('hand', ), 0.062),
    'hip': (('torso', 'thigh'), 0.107),
    'knee': (('thigh', 'shin'), 0.087),
    'ankle': (('shin', 'foot'), 0.089),
    'heel': (('foot', ), 0.089),
    'toe': (('foot', ), 0.089),
}
for _side in ('left', 'right'):
    _ANCHORS.update({
        f'{_side}_{joint}': (tuple(p if p == 'torso' else f'{_side}_{p}'
                                   for p in parts), sigma)
        for joint, (parts, sigma) in _SIDED_ANCHORS.items()
    })
BODY_ANCHORS = {a: frozenset(parts) for a, (parts, _) in _ANCHORS.items()}
# Anchors above the hips: MMPose's RandomHalfBody upper-body keypoints.
_UPPER_ANCHORS = frozenset(
    a for a in BODY_ANCHORS
    if not a.endswith(('hip', 'knee', 'ankle', 'heel', 'toe', 'pelvis')))

# The head hides a face anchor when its outward normal (head frame: left,
# up, forward) has a component towards the camera below the threshold.
_FACE_NORMALS: Dict[str, Tuple[Tuple[float, float, float], float]] = {
    'nose': ((0.0, 0.0, 1.0), -0.35),  # still the silhouette tip in profile
    'left_eye': ((0.45, 0.1, 0.9), 0.05),
    'right_eye': ((-0.45, 0.1, 0.9), 0.05),
    'left_ear': ((1.0, 0.0, -0.3), -0.45),  # seen from front and back
    'right_ear': ((-1.0, 0.0, -0.3), -0.45),
}
# On the torso's side turned away (beyond ~55 degrees of yaw) the torso
# hides shoulder and hip: a torso pixel there does not show them.
_FAR_SIDE_Z = -0.8


@dataclass(frozen=True)
class SkeletonLayout:
    """A keypoint layout: names, links, flip pairs and where each point sits.

    ``skeleton`` (links; COCO's is written 1-based) and ``flip_pairs`` hold
    0-based index pairs. ``placement``: per keypoint ``((anchor, weight),
    ...)`` over :data:`BODY_ANCHORS`, weights summing to 1 (a neck: ``((
    'left_shoulder', 0.5), ('right_shoulder', 0.5))``); empty: every name is
    an anchor.

    Raises:
        ValueError: Names empty or repeated, a pair out of range, a keypoint
            on unknown anchors or with weights not summing to 1.
    """

    name: str
    names: Tuple[str, ...]
    skeleton: Tuple[Tuple[int, int], ...]
    flip_pairs: Tuple[Tuple[int, int], ...]
    placement: Tuple[Tuple[Tuple[str, float], ...], ...] = field(default=())

    def __post_init__(self) -> None:
        # Plain tuples, so that layouts compare by value.
        names = tuple(self.names)
        fields = dict(
            names=names,
            skeleton=tuple(tuple(map(int, p)) for p in self.skeleton),
            flip_pairs=tuple(tuple(map(int, p)) for p in self.flip_pairs),
            placement=tuple(
                tuple((str(a), float(w)) for a, w in spec)
                for spec in self.placement or [((n, 1.0), ) for n in names]))
        for key, value in fields.items():
            object.__setattr__(self, key, value)
        k, err = len(names), f'layout {self.name!r}: '
        if k == 0 or len(set(names)) != k:
            raise ValueError(err + 'names must be non-empty and unique')
        for what in ('skeleton', 'flip_pairs'):
            for pair in fields[what]:
                if len(pair) != 2 or not all(0 <= i < k for i in pair):
                    raise ValueError(f'{err}{what} pair {pair} is not two '
                                     f'indices in [0, {k})')
        if len(self.placement) != k:
            raise ValueError(f'{err}placement has {len(self.placement)} '
                             f'entries for {k} keypoints')
        for name, spec in zip(names, self.placement):
            unknown = [a for a, _ in spec if a not in BODY_ANCHORS]
            if not spec or unknown:
                raise ValueError(f'{err}keypoint {name!r} is placed on '
                                 f'unknown anchors {unknown}; known: '
                                 f'{sorted(BODY_ANCHORS)}')
            if abs(sum(w for _, w in spec) - 1.0) > 1e-6:
                raise ValueError(
                    f'{err}weights of keypoint {name!r} must sum to 1')

    @property
    def num_keypoints(self) -> int:
        return len(self.names)

    @property
    def flip_indices(self) -> List[int]:
        """For each keypoint, the index of its mirror image."""
        indices = list(range(self.num_keypoints))
        for a, b in self.flip_pairs:
            indices[a], indices[b] = b, a
        return indices

    @property
    def sigmas(self) -> List[float]:
        """OKS sigma per keypoint, from the anchors it is placed on."""
        return [
            round(sum(w * _ANCHORS[a][1] for a, w in spec), 4)
            for spec in self.placement
        ]

    def keypoint_spec(self) -> dict:
        """The layout as the keypoint file ``CustomKeypointDataset`` reads."""
        return dict(
            dataset_name=f'synthetic_{self.name}',
            keypoints=list(self.names),
            skeleton=[list(p) for p in self.skeleton],
            flip_pairs=[list(p) for p in self.flip_pairs],
            sigmas=self.sigmas,
            upper_body=[
                name for name, spec in zip(self.names, self.placement)
                if spec[0][0] in _UPPER_ANCHORS
            ])

    def coco_category(self) -> dict:
        """The ``categories`` entry of a COCO keypoint annotation file."""
        return dict(
            supercategory='person',
            id=1,
            name='person',
            keypoints=list(self.names),
            skeleton=[[a + 1, b + 1] for a, b in self.skeleton])

    def to_json(self) -> dict:
        """The fields as ``generation.json`` stores them (lists for tuples)."""
        return json.loads(json.dumps(asdict(self)))


_COCO_NAMES = ('nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear',
               'left_shoulder', 'right_shoulder', 'left_elbow', 'right_elbow',
               'left_wrist', 'right_wrist', 'left_hip', 'right_hip',
               'left_knee', 'right_knee', 'left_ankle', 'right_ankle')

# The 17 COCO person keypoints; skeleton and flip pairs as in COCO.
COCO_LAYOUT = SkeletonLayout(
    name='coco',
    names=_COCO_NAMES,
    skeleton=((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11),
              (6, 12), (5, 6), (5, 7), (6, 8), (7, 9), (8, 10), (1, 2), (0, 1),
              (0, 2), (1, 3), (2, 4), (3, 5), (4, 6)),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14),
                (15, 16)))

# MPII's 16 keypoints in MPII's order (K=16): thorax on the shoulder line,
# upper neck between it and the head top; the others are anchors themselves.
_MPII_NAMES = ('right_ankle', 'right_knee', 'right_hip', 'left_hip',
               'left_knee', 'left_ankle', 'pelvis', 'thorax', 'upper_neck',
               'head_top', 'right_wrist', 'right_elbow', 'right_shoulder',
               'left_shoulder', 'left_elbow', 'left_wrist')
_MPII_NECK = {
    'thorax': (('neck', 1.0), ),
    'upper_neck': (('neck', 0.6), ('head_top', 0.4))
}
MPII_LAYOUT = SkeletonLayout(
    name='mpii',
    names=_MPII_NAMES,
    skeleton=((0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (6, 7), (7, 8),
              (8, 9), (7, 12), (12, 11), (11, 10), (7, 13), (13, 14), (14,
                                                                       15)),
    flip_pairs=((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
    placement=tuple(_MPII_NECK.get(n, ((n, 1.0), )) for n in _MPII_NAMES))

# COCO's 17 keypoints plus heel and toe of each foot (K=21).
COCO_FEET_LAYOUT = SkeletonLayout(
    name='coco_feet',
    names=_COCO_NAMES + ('left_heel', 'right_heel', 'left_toe', 'right_toe'),
    skeleton=COCO_LAYOUT.skeleton + ((15, 17), (15, 19), (17, 19), (16, 18),
                                     (16, 20), (18, 20)),
    flip_pairs=COCO_LAYOUT.flip_pairs + ((17, 18), (19, 20)))

LAYOUTS = {x.name: x for x in (COCO_LAYOUT, MPII_LAYOUT, COCO_FEET_LAYOUT)}

# --- Poses and forward kinematics (body units: standing height = 1) ---

_SIDES = ('left', 'right')
_L = np.array([1.0, 0.0, 0.0])  # the person's left
_U = np.array([0.0, 1.0, 0.0])  # up
_F = np.array([0.0, 0.0, 1.0])  # forward; the camera looks along -Z

_UPPER_ARM, _FOREARM, _HAND = 0.18, 0.15, 0.06
_THIGH, _SHIN = 0.245, 0.245
_SHOULDER_HALF, _HIP_HALF, _SPINE = 0.115, 0.075, 0.29
_HEAD_R = 0.062


@dataclass(frozen=True)
class SceneStyle:
    """How hard the scenes are: clutter, occlusion, views and poses."""

    name: str  # stored in generation.json
    background_shapes: Tuple[int, int]  # [lo, hi) shapes on the background
    limb_bars: bool  # thick lines (limb-like distractors) among the shapes
    occluder_prob: float  # of objects drawn in front of people
    overlap_prob: float  # of a person placed next to an earlier one
    heights: Tuple[float, float]  # image heights, drawn log-uniformly
    noise: Tuple[float, float]  # [lo, hi) of the pixel noise std
    blur_prob: float  # of a Gaussian blur of the whole image
    pose_probs: Tuple[float, ...]  # of _sample_pose's pose families
    view_probs: Tuple[float, float, float]  # front, back, profile


# The default: crowded, cluttered scenes with every view and pose family.
CLUTTERED = SceneStyle(
    name='cluttered',
    background_shapes=(6, 20),
    limb_bars=True,
    occluder_prob=0.25,
    overlap_prob=0.4,
    heights=(0.35, 0.95),
    noise=(2, 7),
    blur_prob=0.3,
    pose_probs=(0.2, 0.2, 0.13, 0.13, 0.1, 0.1, 0.14),
    view_probs=(0.45, 0.2, 0.35))
# The TransPose quickstart's, so that a model trained for minutes on a CPU
# learns the people, not the clutter: no limb-like bars, occluders, blur or
# free-form poses; fewer shapes, overlaps and profile views; larger people.
CLEAN = SceneStyle(
    name='clean',
    background_shapes=(0, 5),
    limb_bars=False,
    occluder_prob=0.0,
    overlap_prob=0.15,
    heights=(0.5, 0.95),
    noise=(1, 3),
    blur_prob=0.0,
    pose_probs=(0.25, 0.25, 0.15, 0.15, 0.1, 0.1, 0.0),
    view_probs=(0.6, 0.2, 0.2))
STYLES: Dict[str, SceneStyle] = {s.name: s for s in (CLUTTERED, CLEAN)}


def _rot(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotation matrix about a unit axis (right-hand rule)."""
    x, y, z = axis / np.linalg.norm(axis)
    c, s = math.cos(angle), math.sin(angle)
    C = 1.0 - c
    return np.array([[c + x * x * C, x * y * C - z * s, x * z * C + y * s],
                     [y * x * C + z * s, c + y * y * C, y * z * C - x * s],
                     [z * x * C - y * s, z * y * C + x * s, c + z * z * C]])


@dataclass
class _Pose:
    # per side: (elevation from hanging, azimuth from lateral towards
    # forward, elbow bend, bend-plane twist), all radians
    arms: Dict[str, Tuple[float, float, float, float]]
    # per side: (elevation from straight down, azimuth, knee bend)
    legs: Dict[str, Tuple[float, float, float]]
    torso: Tuple[float, float, float]  # lean forward, lean sideways, twist
    head: Tuple[float, float, float]  # pitch (down), yaw, roll
    yaw: float  # 0 faces the camera, pi shows the back
    roll: float  # in-plane rotation of the whole figure


def _sample_pose(rng: np.random.Generator, style: SceneStyle) -> _Pose:
    """A random pose from a few families, so poses are varied but human."""

    def deg(lo: float, hi: float) -> float:
        return math.radians(rng.uniform(lo, hi))

    def angles(*ranges: Tuple[float, float]) -> Tuple[float, ...]:
        # One angle (radians) per (lo, hi) degree range, drawn in order.
        return tuple(deg(lo, hi) for lo, hi in ranges)

    kinds = ('stand', 'walk', 'arms_up', 'reach', 'sit', 'lean', 'random')
    kind = kinds[rng.choice(len(kinds), p=style.pose_probs)]
    arms = {s: angles((3, 28), (-20, 70), (0, 40), (-30, 30)) for s in _SIDES}
    legs = {s: angles((0, 9), (-40, 40), (0, 12)) for s in _SIDES}
    torso = angles((-5, 8), (-5, 5), (-10, 10))
    sides = _SIDES if rng.random() < 0.5 else _SIDES[::-1]
    if kind == 'walk':
        swing = deg(12, 32) * rng.choice((-1.0, 1.0))
        for sign, side in ((1.0, sides[0]), (-1.0, sides[1])):
            fwd = sign * swing > 0
            legs[side] = (abs(swing), math.copysign(math.pi / 2, sign * swing),
                          deg(3, 25) if fwd else deg(15, 60))
            arms[side] = (abs(swing) * rng.uniform(0.4, 1.0),
                          math.copysign(math.pi / 2, -sign * swing), *angles(
                              (10, 60), (-20, 20)))
    elif kind == 'arms_up':
        for side in (sides if rng.random() < 0.5 else sides[:1]):
            arms[side] = angles((110, 178), (-20, 70), (0, 80), (-40, 40))
    elif kind == 'reach':
        arms[sides[0]] = angles((45, 115), (-20, 100), (0, 50), (-40, 40))
        if rng.random() < 0.4:
            arms[sides[1]] = angles((30, 100), (0, 100), (20, 120), (-40, 40))
    elif kind == 'sit':
        for side in _SIDES:
            legs[side] = angles((70, 100), (70, 110), (65, 110))
            arms[side] = angles((10, 60), (40, 95), (20, 90), (-30, 30))
        torso = angles((-15, 12), (-6, 6), (-12, 12))
    elif kind == 'lean' and rng.random() < 0.6:  # bent forward
        torso = angles((18, 50), (-6, 6), (-12, 12))
        for side in _SIDES:
            arms[side] = angles((5, 60), (30, 100), (0, 60), (-30, 30))
    elif kind == 'lean':  # sideways
        torso = (deg(-5, 10), deg(12, 30) * rng.choice(
            (-1.0, 1.0)), deg(-12, 12))
    elif kind == 'random':
        for side in _SIDES:
            arms[side] = angles((0, 170), (-60, 120), (0, 140), (-45, 45))
            legs[side] = angles((0, 60), (-80, 100), (0, 120))
        torso = angles((-15, 30), (-15, 15), (-20, 20))
    view = rng.random()
    front, back, _ = style.view_probs
    if view < front:
        yaw = deg(-35, 35)
    elif view < front + back:
        yaw = math.pi + deg(-35, 35)
    else:
        yaw = rng.choice((-1.0, 1.0)) * deg(65, 115)
    head = angles((-15, 25), (-30, 30), (-12, 12))
    roll = math.radians(float(np.clip(rng.normal(0, 7), -20, 20)))
    return _Pose(arms, legs, torso, head, float(yaw), roll)


@dataclass
class _Body:
    """A posed body in world space (x right, y up, z towards the camera)."""
    points: Dict[str, np.ndarray]  # named 3D points, body units
    face_hidden: Dict[str, bool]  # face anchors turned away from the camera
    far_side: frozenset  # shoulders/hips on the torso's far side
    head_axes: np.ndarray  # columns: head left, up, forward (world)
    # per part: circles (3D centre, radius) whose 2D convex hull is drawn
    shapes: List[Tuple[str, List[Tuple[np.ndarray, float]]]]


def _pose_body(pose: _Pose) -> _Body:
    """Forward kinematics: joint angles -> 3D anchors and part shapes."""
    lean_f, lean_s, twist = pose.torso
    # Lean forward turns up towards forward, i.e. a positive turn about left.
    R_t = _rot(_F, lean_s) @ _rot(_L, lean_f) @ _rot(_U, twist)
    Lt, Ut, Ft = R_t[:, 0], R_t[:, 1], R_t[:, 2]
    sc = _SPINE * Ut
    p = {'pelvis': np.zeros(3), 'neck': sc}
    shapes: List[Tuple[str, List[Tuple[np.ndarray, float]]]] = []
    for side, s in (('left', 1.0), ('right', -1.0)):
        sh = sc + s * _SHOULDER_HALF * Lt + 0.01 * Ut
        theta, phi, elbow, bend_twist = pose.arms[side]
        d = -math.cos(theta) * Ut + math.sin(theta) * (
            math.cos(phi) * s * Lt + math.sin(phi) * Ft)
        axis = np.cross(d, Ft)
        if np.linalg.norm(axis) < 0.35:  # arm along forward: bend upwards
            axis = np.cross(d, Ut)
        axis = _rot(d, s * bend_twist) @ (axis / np.linalg.norm(axis))
        d2 = _rot(axis, elbow) @ d
        el = sh + _UPPER_ARM * d
        wr = el + _FOREARM * d2
        p[f'{side}_shoulder'], p[f'{side}_elbow'] = sh, el
        p[f'{side}_wrist'], p[f'{side}_hand'] = wr, wr + _HAND * d2
        shapes += [(f'{side}_upper_arm', [(sh, 0.034), (el, 0.027)]),
                   (f'{side}_forearm', [(el, 0.026), (wr, 0.02)]),
                   (f'{side}_hand', [(wr, 0.02), (wr + 0.035 * d2, 0.026)])]
        hip = s * _HIP_HALF * _L
        theta, phi, knee = pose.legs[side]
        d = -math.cos(theta) * _U + math.sin(theta) * (
            math.cos(phi) * s * _L + math.sin(phi) * _F)
        axis = _L - np.dot(_L, d) * d
        axis /= np.linalg.norm(axis)
        d2 = _rot(axis, knee) @ d  # knees bend backwards about the hip axis
        foot = _rot(axis, -math.pi / 2 + 0.15) @ d2
        kn = hip + _THIGH * d
        an = kn + _SHIN * d2
        heel = an + 0.03 * d2 - 0.025 * foot
        toe = an + 0.03 * d2 + 0.1 * foot
        p[f'{side}_hip'], p[f'{side}_knee'], p[f'{side}_ankle'] = hip, kn, an
        p[f'{side}_heel'], p[f'{side}_toe'] = heel, toe
        shapes += [(f'{side}_thigh', [(hip, 0.056), (kn, 0.04)]),
                   (f'{side}_shin', [(kn, 0.038), (an, 0.026)]),
                   (f'{side}_foot', [(an, 0.026), (heel, 0.022), (toe, 0.02)])]
    chest, belly = sc - 0.07 * Ut, 0.08 * _U
    torso = [(p['left_shoulder'], 0.04), (p['right_shoulder'], 0.04),
             (chest + 0.055 * Ft, 0.05), (chest - 0.05 * Ft, 0.05),
             (p['left_hip'], 0.06), (p['right_hip'], 0.06),
             (belly + 0.05 * _F, 0.05), (belly - 0.05 * _F, 0.05)]
    shapes.append(('torso', torso))
    pitch, hyaw, hroll = pose.head
    R_h = R_t @ _rot(_U, hyaw) @ _rot(_L, pitch) @ _rot(_F, hroll)
    neck_top = sc + 0.045 * Ut
    hc = neck_top + R_h @ np.array([0.0, 0.068, 0.008])
    p['head_center'] = hc
    face_offsets = {
        'nose': (0.0, -0.012, 0.058),
        'left_eye': (0.024, 0.012, 0.05),
        'right_eye': (-0.024, 0.012, 0.05),
        'left_ear': (0.056, 0.0, -0.008),
        'right_ear': (-0.056, 0.0, -0.008),
        'head_top': (0.0, 0.058, 0.0),
    }
    for name, off in face_offsets.items():
        p[name] = hc + R_h @ np.array(off)
    shapes.append(('neck', [(sc, 0.03), (neck_top, 0.026)]))
    shapes.append(('head', [(hc, _HEAD_R)]))
    # Turn the whole body to its view.
    R_w = _rot(_U, pose.yaw)
    points = {k: R_w @ v for k, v in p.items()}
    shapes = [(part, [(R_w @ c, r) for c, r in circles])
              for part, circles in shapes]
    head_axes = R_w @ R_h
    face_hidden = {}
    for name, (normal, thr) in _FACE_NORMALS.items():
        n = head_axes @ np.array(normal)
        face_hidden[name] = bool(n[2] / np.linalg.norm(n) < thr)
    lateral = {'shoulder': R_w @ Lt, 'hip': R_w @ _L}
    far_side = frozenset(f'{side}_{joint}' for joint, n in lateral.items()
                         for side, s in (('left', 1.0), ('right', -1.0))
                         if s * n[2] < _FAR_SIDE_Z)
    return _Body(points, face_hidden, far_side, head_axes, shapes)


# --- Rendering ---

_SKIN = ((189, 224, 255), (148, 205, 255), (125, 194, 241), (105, 172, 224),
         (66, 134, 198), (36, 85, 141), (23, 51, 92))  # BGR
_HAIR = ((20, 20, 20), (30, 45, 70), (40, 70, 110), (110, 190, 230),
         (150, 150, 150), (40, 60, 160), (15, 25, 40))
_PANTS = ((120, 60, 30), (40, 40, 40), (130, 170, 190), (110, 110, 110),
          (60, 40, 20), (30, 30, 90))
_SUBPIX = 4  # cv2 shift bits: draw at 1/16 pixel precision
_SCALE = float(1 << _SUBPIX)


def _hsv(rng: np.random.Generator, s: Tuple[int, int],
         v: Tuple[int, int]) -> Tuple[int, int, int]:
    hsv = (rng.integers(0, 180), rng.integers(*s), rng.integers(*v))
    px = np.array([[hsv]], np.uint8)
    return tuple(int(c) for c in cv2.cvtColor(px, cv2.COLOR_HSV2BGR)[0, 0])


def _jitter(rng: np.random.Generator, colour: Sequence[int],
            amount: int) -> Tuple[int, int, int]:
    c = np.asarray(colour, float) + rng.uniform(-amount, amount, 3)
    return tuple(int(x) for x in np.clip(c, 0, 255))


def _shade(colour: Sequence[int], side: str) -> Tuple[int, int, int]:
    # The left a little lighter than the right: a cue for telling them apart.
    c = np.asarray(colour, float)
    c = c * 0.8 + 255 * 0.2 if side == 'left' else c * 0.75
    return tuple(int(x) for x in np.clip(c, 0, 255))


def _outfit(rng: np.random.Generator) -> Dict[str, Tuple[int, int, int]]:
    skin = _jitter(rng, _SKIN[rng.integers(len(_SKIN))], 12)
    shirt = _hsv(rng, (60, 256), (70, 256))
    pants = (
        _jitter(rng, _PANTS[rng.integers(len(_PANTS))], 15)
        if rng.random() < 0.6 else _hsv(rng, (40, 256), (40, 200)))
    shoes = _jitter(rng, (30, 30, 30), 25)
    long_sleeves, long_legs = rng.random() < 0.5, rng.random() < 0.75
    hair = _jitter(rng, _HAIR[rng.integers(len(_HAIR))], 10)
    colours = dict(torso=shirt, neck=skin, head=skin, hair=hair)
    for side in _SIDES:
        colours[f'{side}_upper_arm'] = _shade(shirt, side)
        colours[f'{side}_forearm'] = (
            _shade(shirt, side) if long_sleeves else skin)
        colours[f'{side}_hand'] = skin
        colours[f'{side}_thigh'] = _shade(pants, side)
        colours[f'{side}_shin'] = _shade(pants, side) if long_legs else skin
        colours[f'{side}_foot'] = _shade(shoes, side)
    return colours


def _circle_pts(centre: np.ndarray, radius: float, n: int = 12) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return centre + radius * np.stack([np.cos(a), np.sin(a)], 1)


def _hull(circles: Sequence[Tuple[np.ndarray, float]]) -> np.ndarray:
    """Convex hull of 2D circles as a fixed-point polygon for cv2."""
    pts = np.concatenate([_circle_pts(c, r) for c, r in circles])
    pts = np.round(pts * _SCALE).astype(np.int32)
    return cv2.convexHull(pts)


class _Canvas:
    """Draws each shape into the image, the part map and a person mask."""

    def __init__(self, image: np.ndarray):
        self.image = image
        self.part_map = np.zeros(image.shape[:2], np.int32)

    def fill(self, poly: np.ndarray, colour: Sequence[int], code: int,
             mask: Optional[np.ndarray], outline: bool) -> None:
        cv2.fillConvexPoly(self.image, poly, colour, cv2.LINE_AA, _SUBPIX)
        if outline:
            # A darker rim keeps same-coloured parts (arm, torso) apart.
            dark = tuple(int(c * 0.55) for c in colour)
            cv2.polylines(self.image, [poly], True, dark, 1, cv2.LINE_AA,
                          _SUBPIX)
        cv2.fillConvexPoly(self.part_map, poly, code, cv2.LINE_8, _SUBPIX)
        if mask is not None:
            cv2.fillConvexPoly(mask, poly, 1, cv2.LINE_8, _SUBPIX)

    def dot(self, centre: np.ndarray, radius: float,
            colour: Sequence[int]) -> None:
        """Image-only detail (eyes, ears) inside an already drawn part."""
        c = tuple(int(v) for v in np.round(centre * _SCALE))
        cv2.circle(self.image, c, max(int(round(radius * _SCALE)), 8), colour,
                   -1, cv2.LINE_AA, _SUBPIX)


def _background(rng: np.random.Generator, w: int, h: int,
                style: SceneStyle) -> np.ndarray:
    """Gradient + texture + random shapes, so people cannot be thresholded."""
    c0 = np.array(_hsv(rng, (0, 200), (40, 235)), np.float32)
    c1 = np.array(_hsv(rng, (0, 200), (40, 235)), np.float32)
    a = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = xx * math.cos(a) + yy * math.sin(a)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
    img = c0 * (1 - t[..., None]) + c1 * t[..., None]
    blotches = rng.normal(0, rng.uniform(5, 25), (h // 16 + 2, w // 16 + 2, 3))
    img += cv2.resize(
        blotches.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(*style.background_shapes))):
        colour = _hsv(rng, (0, 256), (20, 256))
        kind = rng.integers(5 if style.limb_bars else 4)
        if not style.limb_bars and kind == 3:
            kind = 4
        x0, y0 = rng.uniform(-0.1, 1.1) * w, rng.uniform(-0.1, 1.1) * h
        size = rng.uniform(0.04, 0.45) * min(w, h)
        fill = -1 if rng.random() < 0.7 else int(rng.integers(1, 4))
        p0 = (int(x0), int(y0))
        if kind == 0:
            x1 = x0 + size * rng.uniform(0.3, 2)
            y1 = y0 + size * rng.uniform(0.3, 2)
            cv2.rectangle(img, p0, (int(x1), int(y1)), colour, fill)
        elif kind == 1:
            cv2.circle(img, p0, int(size / 2), colour, fill, cv2.LINE_AA)
        elif kind == 2:
            axes = (int(size / 2), int(size * rng.uniform(0.1, 0.5)))
            cv2.ellipse(img, p0, axes, float(rng.uniform(0, 180)), 0, 360,
                        colour, fill, cv2.LINE_AA)
        elif kind == 3:  # limb-like bars as distractors
            b = rng.uniform(0, 2 * np.pi)
            x1, y1 = x0 + size * 2 * math.cos(b), y0 + size * 2 * math.sin(b)
            cv2.line(img, p0, (int(x1), int(y1)), colour,
                     int(rng.integers(1, 12)), cv2.LINE_AA)
        else:
            xs = x0 + rng.uniform(-size, size, 5)
            pts = np.stack([xs, y0 + rng.uniform(-size, size, 5)], 1)
            cv2.fillPoly(img, [pts.astype(np.int32)], colour, cv2.LINE_AA)
    return img


@dataclass
class _Person:
    body: _Body
    scale: float  # pixels per body unit (standing height in pixels)
    origin: Tuple[float, float]  # pelvis position in the image
    colours: Dict[str, Tuple[int, int, int]]
    roll: float = 0.0  # in-plane rotation, radians

    def project(self, pts: np.ndarray) -> np.ndarray:
        """World points (..., 3) -> image points (..., 2), orthographic."""
        c, s = math.cos(self.roll), math.sin(self.roll)
        x = c * pts[..., 0] - s * pts[..., 1]
        y = s * pts[..., 0] + c * pts[..., 1]
        ox, oy = self.origin
        return np.stack([ox + self.scale * x, oy - self.scale * y], -1)


def _draw_person(canvas: _Canvas, person: _Person, index: int,
                 mask: np.ndarray) -> None:
    """Paint one person, parts far to near, into image, part map and mask."""
    bias = {'torso': 0.0, 'neck': -0.05, 'head': 0.05}
    order = []
    for part, circles in person.body.shapes:
        z = float(np.mean([c[2] for c, _ in circles]))
        if part.endswith('thigh'):
            z -= 0.02  # the hip joint sits under the pelvis
        elif part not in bias:
            z += 0.01  # hanging arms lie in front of the torso edge
        order.append((z + bias.get(part, 0.0), part, circles))
    order.sort(key=lambda o: (o[0], o[1]))
    for _, part, circles in order:
        code = index * _CODE_STRIDE + _PART_INDEX[part] + 1
        circles2d = [(person.project(c), r * person.scale) for c, r in circles]
        if part == 'head':
            _draw_head(canvas, person, *circles2d[0], code, mask)
        else:
            canvas.fill(
                _hull(circles2d), person.colours[part], code, mask, True)


def _draw_head(canvas: _Canvas, person: _Person, c: np.ndarray, r: float,
               code: int, mask: np.ndarray) -> None:
    """Skin disc, hair at the back/top, face towards the camera, eyes."""
    body, axes = person.body, person.body.head_axes
    origin = person.project(np.zeros(3))
    fwd = (person.project(axes[:, 2]) - origin) / person.scale
    up = (person.project(axes[:, 1]) - origin) / person.scale
    skin, hair = person.colours['head'], person.colours['hair']
    ear_skin = tuple(int(v * 0.9) for v in skin)
    pts = {n: person.project(body.points[n]) for n in _FACE_NORMALS}
    # Edge-on ears (front, back) poke out under the hair; facing ones on top.
    ears = [e for e in ('left_ear', 'right_ear') if not body.face_hidden[e]]
    facing = {e: (axes @ np.array(_FACE_NORMALS[e][0]))[2] for e in ears}
    canvas.fill(_hull([(c, r)]), skin, code, mask, True)
    for ear in ears:
        if facing[ear] <= 0.5:
            canvas.dot(pts[ear], 0.3 * r, ear_skin)
    hair_disc = (c + r * (-0.3 * fwd + 0.15 * up), r * 1.04)
    canvas.fill(_hull([hair_disc]), hair, code, mask, False)
    if axes[2, 2] > -0.25:  # some of the face turns to the camera
        face = (c + r * (0.24 * fwd - 0.12 * up), r * 0.84)
        canvas.fill(_hull([face]), skin, code, mask, False)
    for ear in ears:
        if facing[ear] > 0.5:
            canvas.dot(pts[ear], 0.3 * r, ear_skin)
    if not body.face_hidden['nose'] and np.hypot(*fwd) > 0.5:
        canvas.dot(pts['nose'] + 0.1 * r * fwd, 0.22 * r, skin)  # profile
    for eye in ('left_eye', 'right_eye'):
        if not body.face_hidden[eye]:
            canvas.dot(pts[eye], max(0.13 * r, 0.8), (25, 20, 20))


def _sample_people(rng: np.random.Generator, w: int, h: int, max_people: int,
                   style: SceneStyle) -> List[_Person]:
    """1..max_people posed people, sorted far (drawn first) to near."""
    weights = np.array([0.3, 0.3, 0.25, 0.15] + [0.1] * max(0, max_people - 4))
    weights = weights[:max_people] / weights[:max_people].sum()
    n = int(rng.choice(np.arange(1, max_people + 1), p=weights))
    people: List[Tuple[float, _Person]] = []
    for i in range(n):
        height = h * math.exp(
            rng.uniform(*(math.log(f) for f in style.heights)))
        # deliberately overlap a neighbour
        if i > 0 and rng.random() < style.overlap_prob:
            ox = people[int(rng.integers(i))][1].origin[0]
            dx = rng.choice((-1.0, 1.0)) * rng.uniform(0.1, 0.35) * height
            x = float(np.clip(ox + dx, 0.06 * w, 0.94 * w))
        else:
            x = rng.uniform(0.06, 0.94) * w
        lo, hi = 0.37 * height, h - 0.43 * height
        y = rng.uniform(min(lo, hi), max(lo, hi))
        y = float(np.clip(y, 0.12 * h, 0.88 * h))
        pose = _sample_pose(rng, style)
        person = _Person(
            _pose_body(pose), height, (x, y), _outfit(rng), roll=pose.roll)
        depth = height * rng.uniform(0.85, 1.15)  # bigger is usually nearer
        people.append((depth, person))
    people.sort(key=lambda dp: dp[0])
    return [p for _, p in people]


def _draw_occluders(rng: np.random.Generator, canvas: _Canvas,
                    people: List[_Person], style: SceneStyle) -> None:
    """Objects in front of the people (boxes, poles, blobs) in some images."""
    if rng.random() >= style.occluder_prob:
        return
    for _ in range(int(rng.integers(1, 3))):
        person = people[int(rng.integers(len(people)))]
        names = sorted(person.body.points)
        anchor = person.body.points[names[int(rng.integers(len(names)))]]
        cx, cy = person.project(anchor) + rng.normal(0, 0.08 * person.scale, 2)
        size = person.scale * rng.uniform(0.1, 0.3)
        colour = _hsv(rng, (0, 256), (30, 240))
        kind = rng.integers(3)
        if kind == 0:
            hw, hh = size * rng.uniform(0.5, 1.5), size * rng.uniform(0.5, 1.5)
            poly = np.array([[cx - hw, cy - hh], [cx + hw, cy - hh],
                             [cx + hw, cy + hh], [cx - hw, cy + hh]])
        elif kind == 1:  # a pole
            a = rng.uniform(-0.3, 0.3)
            d = np.array([math.sin(a), math.cos(a)]) * canvas.image.shape[0]
            t = np.array([math.cos(a), -math.sin(a)]) * size * 0.2
            c = np.array([cx, cy])
            poly = np.array([c - d - t, c - d + t, c + d + t, c + d - t])
        else:
            poly = _circle_pts(np.array([cx, cy]), size * 0.7, 16)
        poly = np.round(poly * _SCALE).astype(np.int32)
        canvas.fill(poly, colour, _OCCLUDER_CODE, None, True)


@dataclass
class Scene:
    """One rendered image and its annotations (before JPEG compression).

    ``keypoints`` is (P, K, 3) float with ``(x, y, v)`` per keypoint of the
    layout; ``boxes`` (P, 4) xywh, ``areas`` (P,), ``segmentations`` COCO
    polygons, all for the amodal silhouettes; ``background`` is the image
    without people and occluders (same noise), ``part_map`` the per-pixel
    owner code (``person * 16 + part + 1``, 0 background, -1 occluder).
    """
    image: np.ndarray
    background: np.ndarray
    part_map: np.ndarray
    keypoints: np.ndarray
    boxes: np.ndarray
    areas: np.ndarray
    segmentations: List[List[List[float]]]


def _keypoints(person: _Person, index: int, layout: SkeletonLayout,
               part_map: np.ndarray) -> np.ndarray:
    h, w = part_map.shape
    out = np.zeros((layout.num_keypoints, 3))
    pts = person.body.points
    for k, spec in enumerate(layout.placement):
        x, y = person.project(sum(wt * pts[a] for a, wt in spec))
        if not (0.0 <= x <= w - 1 and 0.0 <= y <= h - 1) or any(
                person.body.face_hidden.get(a, False) for a, _ in spec):
            continue
        parts = set()
        for a, _ in spec:
            parts |= BODY_ANCHORS[a]
            if a in person.body.far_side:  # the torso hides it, not shows it
                parts -= {'torso'}
        code = int(part_map[int(round(y)), int(round(x))]) - 1
        mine = code >= 0 and code // _CODE_STRIDE == index
        visible = mine and PART_NAMES[code % _CODE_STRIDE] in parts
        out[k] = (round(float(x), 2), round(float(y), 2), 2 if visible else 1)
    return out


def _silhouette(mask: np.ndarray) -> Tuple[List[float], float, list]:
    x, y, bw, bh = cv2.boundingRect(mask)
    area = float(cv2.countNonZero(mask))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    polys = []
    for cnt in contours:
        cnt = cv2.approxPolyDP(cnt, 1.0, True)
        if len(cnt) >= 3:
            polys.append([float(v) for v in cnt.reshape(-1)])
    if not polys:  # degenerate slivers: fall back to the box
        x1, y1 = x + bw, y + bh
        polys = [[float(v) for v in (x, y, x1, y, x1, y1, x, y1)]]
    return [float(x), float(y), float(bw), float(bh)], area, polys


def render_scene(seed: int,
                 image_id: int,
                 image_size: Tuple[int, int] = (320, 256),
                 layout: SkeletonLayout = COCO_LAYOUT,
                 max_people: int = 4,
                 style: str = 'cluttered') -> Scene:
    """Render image ``image_id`` of the dataset with ``seed``: the pixels
    depend only on ``(seed, image_id, image_size, max_people, style)``, the
    layout only picks the keypoints read off the bodies."""
    w, h = image_size
    style = STYLES[style]
    rng = np.random.default_rng([seed, image_id])
    background = _background(rng, w, h, style)
    canvas = _Canvas(background.copy())
    people = _sample_people(rng, w, h, max_people, style)
    masks = [np.zeros((h, w), np.uint8) for _ in people]
    for i, (person, mask) in enumerate(zip(people, masks)):
        _draw_person(canvas, person, i, mask)
    _draw_occluders(rng, canvas, people, style)
    noise = rng.normal(0, rng.uniform(*style.noise),
                       (h, w, 3)).astype(np.float32)
    blur = rng.uniform(0.5, 1.0) if rng.random() < style.blur_prob else 0.0

    def finish(img: np.ndarray) -> np.ndarray:
        img = np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)
        return cv2.GaussianBlur(img, (0, 0), blur) if blur else img

    keypoints = np.stack([
        _keypoints(person, i, layout, canvas.part_map)
        for i, person in enumerate(people)
    ])
    boxes, areas, segmentations = zip(*map(_silhouette, masks))
    return Scene(
        finish(canvas.image), finish(background), canvas.part_map, keypoints,
        np.array(boxes), np.array(areas), list(segmentations))


# --- Dataset writing ---

_STANDARD_SPLITS = {'train': 1, 'val': 2, 'test': 3}
_MAX_PER_SPLIT = 99999
_SPLIT_NAME = re.compile(r'^[A-Za-z0-9_-]+$')
_JPEGS = '[0-9]' * 6 + '.jpg'  # the image file names a generation writes
_JPEG_QUALITY = [cv2.IMWRITE_JPEG_QUALITY, 90]


def split_image_ids(splits: Mapping[str, int]) -> Dict[str, List[int]]:
    """Image ids per split, ``offset * 100000 + index``: offsets 1, 2, 3 for
    train, val, test, then 4, 5, ... for other names in sorted order."""
    others = sorted(s for s in splits if s not in _STANDARD_SPLITS)
    offsets = {**_STANDARD_SPLITS, **{s: 4 + i for i, s in enumerate(others)}}
    return {
        s: [offsets[s] * 100000 + i for i in range(int(n))]
        for s, n in splits.items()
    }


def generation_params(splits: Mapping[str, int],
                      seed: int = 0,
                      image_size: Tuple[int, int] = (320, 256),
                      layout: SkeletonLayout = COCO_LAYOUT,
                      max_people: int = 4,
                      style: str = 'cluttered') -> dict:
    """What ``generation.json`` records (equal params, equal output); splits
    of 0 images are left out (they write no files).

    Raises:
        ValueError: A parameter is out of range (before anything is written).
    """
    if not splits:
        raise ValueError('splits is empty: give e.g. {"train": 320}')
    if len([s for s in splits if s not in _STANDARD_SPLITS]) > 6:
        raise ValueError('at most 6 split names besides train/val/test')
    for name, n in splits.items():
        if not _SPLIT_NAME.match(str(name)):
            raise ValueError(f'split name {name!r}: use letters, digits, '
                             '"_" or "-"')
        if int(n) != n or not 0 <= n <= _MAX_PER_SPLIT:
            raise ValueError(f'split {name!r}: {n} images; need an integer in '
                             f'[0, {_MAX_PER_SPLIT}]')
    if sum(splits.values()) == 0:
        raise ValueError('all splits have 0 images')
    if int(seed) != seed or seed < 0:
        raise ValueError(f'seed must be a non-negative integer, got {seed}')
    if (len(image_size) != 2 or any(int(v) != v for v in image_size)
            or not all(64 <= v <= 4096 for v in image_size)):
        raise ValueError(f'image_size must be (width, height) with both in '
                         f'[64, 4096], got {tuple(image_size)}')
    if int(max_people) != max_people or not 1 <= max_people <= 20:
        raise ValueError(f'max_people must be in [1, 20], got {max_people}')
    if style not in STYLES:
        raise ValueError(f'style must be one of {sorted(STYLES)}, got '
                         f'{style!r}')
    nonempty = {str(k): int(v) for k, v in splits.items() if v > 0}
    return {
        'generator': 'sspose_mm.synthetic',
        'version': GENERATOR_VERSION,
        'seed': int(seed),
        'splits': nonempty,
        'image_size': [int(v) for v in image_size],
        'max_people': int(max_people),
        'style': str(style),
        'layout': layout.to_json(),
    }


def _paths(out_dir: Path, split: str) -> Dict[str, Path]:
    ann = out_dir / 'annotations' / f'person_keypoints_{split}.json'
    dets = out_dir / 'person_detection_results' / f'{split}_detections.json'
    return dict(img_dir=out_dir / split, ann_file=ann, bbox_file=dets)


def keypoint_file_path(out_dir: PathLike) -> Path:
    """Where a non-COCO layout's keypoint file (metainfo) is written."""
    return Path(out_dir) / 'annotations' / 'keypoints.json'


def _recorded_params(out_dir: Path) -> dict:
    """The params in ``out_dir``'s ``generation.json``; {} if unreadable."""
    try:
        data = json.loads((out_dir / 'generation.json').read_text())
        return data.get('params', {}) if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def is_generated(out_dir: PathLike, params: dict) -> bool:
    """True if ``out_dir`` holds a complete generation with ``params``."""
    out_dir = Path(out_dir)
    if _recorded_params(out_dir) != params:
        return False
    for split, n in params['splits'].items():
        img_dir, ann_file, bbox_file = _paths(out_dir, split).values()
        if not (ann_file.is_file() and bbox_file.is_file()
                and len(list(img_dir.glob(_JPEGS))) == n):
            return False
    return (params['layout'] == COCO_LAYOUT.to_json()
            or keypoint_file_path(out_dir).is_file())


def _remove_generated(out_dir: Path, splits: Sequence[str]) -> None:
    """Delete what a generation writes for ``splits``; nothing else."""
    splits = [str(s) for s in splits if _SPLIT_NAME.match(str(s))]
    files = [keypoint_file_path(out_dir)]
    for split in splits:
        img_dir, ann_file, bbox_file = _paths(out_dir, split).values()
        files += [*img_dir.glob(_JPEGS), ann_file, bbox_file]
    for f in files:
        if f.is_file():
            f.unlink()
    for sub in [*splits, 'annotations', 'person_detection_results']:
        d = out_dir / sub
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()


def _fmt(v: float) -> Union[int, float]:
    v = round(float(v), 2)
    return int(v) if v.is_integer() else v


def _detections(seed: int, image_id: int, boxes: np.ndarray, w: int,
                h: int) -> List[dict]:
    """Jittered true boxes (score >= 0.6) and 1-3 false positives (< 0.35)."""
    rng = np.random.default_rng([seed, image_id, 1])
    dets = []

    def clip_box(x0, y0, x1, y1):
        x0, x1 = np.clip([x0, x1], 0, w)
        y0, y1 = np.clip([y0, y1], 0, h)
        return [_fmt(x0), _fmt(y0), _fmt(x1 - x0), _fmt(y1 - y0)]

    def detection(box: List[float], lo: float, hi: float) -> dict:
        score = round(float(rng.uniform(lo, hi)), 4)
        return dict(image_id=image_id, category_id=1, bbox=box, score=score)

    for x, y, bw, bh in boxes:
        cx = x + bw / 2 + rng.normal(0, 0.03) * bw
        cy = y + bh / 2 + rng.normal(0, 0.03) * bh
        sw, sh = bw * math.exp(rng.normal(0, 0.05)), bh * math.exp(
            rng.normal(0, 0.05))
        box = clip_box(cx - sw / 2, cy - sh / 2, cx + sw / 2, cy + sh / 2)
        if box[2] > 1 and box[3] > 1:
            dets.append(detection(box, 0.6, 0.99))
    for _ in range(int(rng.integers(1, 4))):
        bh = rng.uniform(0.15, 0.6) * h
        bw = bh * rng.uniform(0.25, 0.8)
        x0, y0 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
        dets.append(detection(clip_box(x0, y0, x0 + bw, y0 + bh), 0.02, 0.35))
    return dets


def _write_json(path: Path, obj) -> None:
    atomic_write(str(path), json.dumps(obj, separators=(',', ':')).encode())


def _annotation(image_id: int, index: int, scene: Scene) -> dict:
    """COCO annotation of person ``index`` of ``scene``."""
    kp = scene.keypoints[index]
    return dict(
        id=image_id * 100 + index + 1,
        image_id=image_id,
        category_id=1,
        bbox=[_fmt(v) for v in scene.boxes[index]],
        area=_fmt(scene.areas[index]),
        iscrowd=0,
        keypoints=[_fmt(v) for v in kp.reshape(-1)],
        num_keypoints=int(np.count_nonzero(kp[:, 2] > 0)),
        segmentation=[[_fmt(v) for v in poly]
                      for poly in scene.segmentations[index]])


def _summary(out_dir: Path, params: dict) -> dict:
    """What :func:`generate_synthetic_coco` returns, read off the files."""
    record = out_dir / 'generation.json'
    result = dict(out_dir=out_dir, generation_file=record, splits={})
    if params['layout'] != COCO_LAYOUT.to_json():
        result['keypoint_file'] = keypoint_file_path(out_dir)
    for split, n in params['splits'].items():
        paths = _paths(out_dir, split)
        anns = json.loads(paths['ann_file'].read_text())['annotations']
        dets = json.loads(paths['bbox_file'].read_text())
        result['splits'][split] = dict(
            paths,
            num_images=n,
            num_annotations=len(anns),
            num_detections=len(dets))
    return result


def generate_synthetic_coco(out_dir: PathLike,
                            splits: Mapping[str, int],
                            seed: int = 0,
                            image_size: Tuple[int, int] = (320, 256),
                            layout: SkeletonLayout = COCO_LAYOUT,
                            max_people: int = 4,
                            style: str = 'cluttered',
                            progress: bool = False) -> dict:
    """Write the synthetic-people dataset to ``out_dir`` (always regenerates).

    The files of an earlier generation there (its splits' JPEGs and JSON
    files) are removed first, no others; ``generation.json`` is written last,
    so it means the generation finished. ``splits`` maps split names to image
    counts, ``image_size`` is ``(width, height)`` in pixels, ``style`` names a
    :data:`STYLES` entry; a ``layout`` other than :data:`COCO_LAYOUT` (which
    MMPose's ``CocoDataset`` describes) gets a :func:`keypoint_file_path`.

    Raises:
        ValueError: A parameter is out of range (before anything is written).

    Returns:
        ``{'out_dir', 'generation_file': Path, 'splits': {split: {'img_dir',
        'ann_file', 'bbox_file': Path, 'num_images', 'num_annotations',
        'num_detections': int}}}``, plus ``'keypoint_file': Path`` for
        layouts other than COCO's.
    """
    params = generation_params(splits, seed, image_size, layout, max_people,
                               style)
    out_dir = Path(out_dir)
    old_splits = list(_recorded_params(out_dir).get('splits', {}))
    (out_dir / 'generation.json').unlink(missing_ok=True)
    _remove_generated(out_dir, sorted(set(old_splits) | set(splits)))
    w, h = params['image_size']
    for split, ids in split_image_ids(params['splits']).items():
        img_dir, ann_file, bbox_file = _paths(out_dir, split).values()
        img_dir.mkdir(parents=True, exist_ok=True)
        images, anns, dets = [], [], []
        if progress:
            from tqdm import tqdm
            ids = tqdm(ids, desc=f'synthetic {split}', unit='img')
        for image_id in ids:
            scene = render_scene(seed, image_id, (w, h), layout, max_people,
                                 style)
            file_name = f'{image_id:06d}.jpg'
            cv2.imwrite(str(img_dir / file_name), scene.image, _JPEG_QUALITY)
            images.append(
                dict(id=image_id, file_name=file_name, width=w, height=h))
            people = range(len(scene.boxes))
            anns += [_annotation(image_id, i, scene) for i in people]
            dets += _detections(seed, image_id, scene.boxes, w, h)
        _write_json(
            ann_file, {
                'info': {
                    'description': 'sspose_mm synthetic people',
                    'version': str(GENERATOR_VERSION),
                    'seed': int(seed)
                },
                'licenses': [],
                'images': images,
                'annotations': anns,
                'categories': [layout.coco_category()],
            })
        _write_json(bbox_file, dets)
    if layout != COCO_LAYOUT:
        atomic_write(
            str(keypoint_file_path(out_dir)),
            json.dumps(layout.keypoint_spec(), indent=1).encode())
    text = json.dumps({'params': params}, indent=2, sort_keys=True)
    (out_dir / 'generation.json').write_text(text + '\n')
    return _summary(out_dir, params)


def ensure_synthetic_coco(out_dir: PathLike,
                          splits: Mapping[str, int],
                          force: bool = False,
                          progress: bool = False,
                          **params) -> Tuple[dict, bool]:
    """Generate unless ``out_dir`` already holds this exact generation.

    ``params``: :func:`generate_synthetic_coco`'s ``seed`` to ``style``.
    Returns ``(result, generated)``, ``result`` as from that function.
    """
    recorded = generation_params(splits, **params)
    if not force and is_generated(out_dir, recorded):
        return _summary(Path(out_dir), recorded), False
    return generate_synthetic_coco(
        out_dir, splits, progress=progress, **params), True
