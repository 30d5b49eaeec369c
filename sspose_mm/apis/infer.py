"""Top-down pose inference on an image, a folder of images or a video.

Person boxes (:class:`PersonBoxes`): one fixed ``xywh`` box; a COCO-results
detection file, whose ``image_id`` the COCO annotation file maps to
``file_name`` (matched to an image by base name; ``score > det_thr`` kept,
as in MMPose's demos); or else the whole image or frame.

MMPose's ``Pose2DInferencer`` predicts and draws (through
:class:`BoxedPoseInferencer`); here are the boxes, skipping a folder's
unusable images, the refusals before the model loads, and one COCO-results
``predictions.json`` (MMPose writes one JSON per image in its own layout).
"""
import json
import os
import os.path as osp
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import mmcv
import numpy as np
from mmengine.dataset import pseudo_collate
from mmengine.structures import InstanceData
from mmpose.apis.inferencers import Pose2DInferencer
from mmpose.structures.bbox import bbox_xywh2xyxy
from PIL import Image
from pycocotools.coco import COCO
from tqdm import tqdm

from ..errors import ConfigError, DataError
from .fast_inference import prepare_for_inference
from .loading import init_model, topdown_config

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv')
# How pictures and videos are drawn: boxes, 3-pixel keypoints, 2-pixel limbs.
DRAW_OPTIONS = dict(draw_bbox=True, radius=3, thickness=2)


class PersonBoxes:
    """Where the person boxes of an image come from (see the module doc):
    ``bbox_xywh``, or ``det_file`` with ``ann_file`` and ``det_thr``."""

    def __init__(self,
                 bbox_xywh: Optional[Sequence[float]] = None,
                 det_file: Optional[str] = None,
                 ann_file: Optional[str] = None,
                 det_thr: float = 0.3) -> None:
        if bbox_xywh is not None and det_file is not None:
            raise ConfigError('give either --bbox or --det-file, not both.')
        if det_file is not None and ann_file is None:
            raise ConfigError(
                '--det-file needs --ann-file: a COCO results file names '
                'images only by image_id, and the annotation file maps '
                'image_id to file_name.')
        if ann_file is not None and det_file is None:
            raise ConfigError('--ann-file is only used with --det-file.')
        self.bbox_xywh = bbox_xywh
        self.fixed = None if bbox_xywh is None else check_bbox(bbox_xywh)
        # base file name -> (image_id, boxes (N, 5) xyxy and score)
        self.by_name: Optional[Dict[str, Tuple[int, np.ndarray]]] = None
        if det_file is not None:
            self.by_name = _load_detections(det_file, ann_file, det_thr)

    def fits(self, height: int, width: int) -> bool:
        """False only for a fixed box lying wholly outside the image."""
        return self.fixed is None or box_on_image(self.fixed[0], height, width)

    def knows(self, file_name: str) -> bool:
        """False only for an image the annotation file does not list."""
        return self.by_name is None or osp.basename(file_name) in self.by_name

    def lookup(self,
               file_name: str) -> Tuple[Optional[int], Optional[np.ndarray]]:
        """``(coco_image_id or None, boxes)``: the fixed ``(1, 4)`` box, the
        ``(N, 5)`` detections (xyxy and score), or None: the whole image."""
        if self.by_name is not None:
            return self.by_name[osp.basename(file_name)]
        return None, self.fixed


def box_on_image(xyxy: Sequence[float], height: int, width: int) -> bool:
    """Whether a box overlaps the image at all."""
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    return x1 < width and y1 < height and x2 > 0 and y2 > 0


def check_bbox(bbox_xywh: Sequence[float],
               image_hw: Optional[Tuple[int, int]] = None,
               image_path: str = '') -> np.ndarray:
    """The ``(1, 4)`` xyxy box of ``--bbox X Y W H``; refuses an empty box
    and, given the image size, a box wholly outside the image (one partly
    inside is fine: the affine crop pads with black, as at test time)."""
    x, y, w, h = (float(v) for v in bbox_xywh)
    if not (w > 0 and h > 0):
        raise ConfigError(f'--bbox {x:g} {y:g} {w:g} {h:g} has a '
                          'non-positive width or height.')
    box = np.array([[x, y, x + w, y + h]], dtype=np.float32)
    if image_hw is not None and not box_on_image(box[0], *image_hw):
        raise ConfigError(f'--bbox {x:g} {y:g} {w:g} {h:g} lies outside the '
                          f'image {image_path} ({image_hw[1]}x{image_hw[0]} '
                          'pixels).')
    return box


def _read_json(path: str, what: str):
    if not osp.isfile(path):
        raise ConfigError(f'{what} "{path}" does not exist.')
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f'{what} "{path}" is not valid JSON: {error}.')


def _load_detections(det_file: str, ann_file: str,
                     det_thr: float) -> Dict[str, Tuple[int, np.ndarray]]:
    """Detections above ``det_thr`` grouped by the base name of the image."""
    ann = _read_json(ann_file, 'annotation file')
    if not isinstance(ann, dict) or not isinstance(ann.get('images'), list):
        raise DataError(f'annotation file "{ann_file}" has no "images" list '
                        '(a COCO annotation file is expected).')
    try:
        names = {
            int(im['id']): osp.basename(im['file_name'])
            for im in ann['images']
        }
    except (KeyError, TypeError, ValueError):
        raise DataError(f'annotation file "{ann_file}": every image needs an '
                        '"id" and a "file_name".')
    dets = _read_json(det_file, 'detection file')
    if not isinstance(dets, list):
        raise DataError(f'detection file "{det_file}" must be a list of '
                        '{"image_id", "bbox", "score"} (COCO results format).')
    grouped: Dict[int, List[List[float]]] = {}
    for i, det in enumerate(dets):
        try:
            image_id = int(det['image_id'])
            x, y, w, h = (float(v) for v in det['bbox'])
            score = float(det.get('score', 1.0))
            category = int(det.get('category_id', 1))
        except (KeyError, TypeError, ValueError):
            raise DataError(f'detection file "{det_file}", entry {i}: needs '
                            '"image_id", a 4-number "bbox" and a "score".')
        # Results files of multi-class detectors hold other classes too, and
        # a zero-size box cannot be cropped.
        if category != 1 or score <= det_thr or w <= 0 or h <= 0:
            continue
        grouped.setdefault(image_id, []).append([x, y, x + w, y + h, score])
    return {
        name: (image_id, np.array(grouped.get(image_id, []),
                                  np.float32).reshape(-1, 5))
        for image_id, name in names.items()
    }


def find_inputs(input_path: str) -> Tuple[str, List[str]]:
    """``('image' | 'folder' | 'video', files)``; a folder gives its images
    (not recursive, sorted by name)."""
    if osp.isdir(input_path):
        files = sorted(
            osp.join(input_path, name) for name in os.listdir(input_path)
            if name.lower().endswith(IMAGE_EXTENSIONS)
            and osp.isfile(osp.join(input_path, name)))
        if not files:
            raise DataError(f'folder "{input_path}" has no images '
                            f'({", ".join(e[1:] for e in IMAGE_EXTENSIONS)}).')
        return 'folder', files
    if not osp.exists(input_path):
        raise DataError(f'input "{input_path}" does not exist.')
    lower = input_path.lower()
    if lower.endswith(IMAGE_EXTENSIONS):
        return 'image', [input_path]
    if lower.endswith(VIDEO_EXTENSIONS):
        return 'video', [input_path]
    raise DataError(
        f'input "{input_path}" is not a supported file type: use an image '
        f'({", ".join(e[1:] for e in IMAGE_EXTENSIONS)}), a video '
        f'({", ".join(e[1:] for e in VIDEO_EXTENSIONS)}) or a folder.')


def read_image(path: str) -> np.ndarray:
    """The image as BGR (what MMPose's ``LoadImage`` gives the model).

    Raises:
        DataError: It cannot be read or decoded.
    """
    try:
        image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
    except (OSError, cv2.error):  # unreadable, or empty
        image = None
    if image is None:
        raise DataError(f'the image {path} could not be read or decoded '
                        '(empty or corrupt file).')
    return image


class BoxedPoseInferencer(Pose2DInferencer):
    """MMPose's ``Pose2DInferencer`` on a ``model`` loaded by
    :func:`~.loading.init_model` (MMPose's loads what fits of a checkpoint),
    with the caller's boxes (MMPose 1.3.2 ignores ``bboxes`` for top-down).

    Call it like MMPose's with one BGR image or a video path, and
    ``person_boxes`` for every image or frame: ``(N, 4)`` xyxy or ``(N, 5)``
    xyxy and score (1 when absent), None for the whole image; ``img_path``
    names an image's picture in ``vis_out_dir``.
    """

    preprocess_kwargs = Pose2DInferencer.preprocess_kwargs | {
        'img_path', 'person_boxes'
    }

    def __init__(self, model) -> None:
        self._loaded = model
        super().__init__(
            model.cfg,
            device=str(next(model.parameters()).device),
            det_model='whole_image')

    def _init_model(self, cfg, weights, device):
        return self._loaded

    def _init_collate(self, cfg):
        # As inference_topdown; the inferencer's lookup of the config's
        # collate_fn warns that the mmpose scope has no function registry.
        return pseudo_collate

    def _inputs_to_list(self, inputs):
        frames = super()._inputs_to_list(inputs)
        if self._video_input:
            # The frames are read again from the start: the first is cached.
            if frames.read() is None:
                raise DataError(f'the video {inputs} could not be opened or '
                                'has no readable frame.')
            # Some containers report no fps; 25 keeps the output playable.
            self.video_info['fps'] = self.video_info['fps'] or 25.0
        return frames

    def preprocess_single(self,
                          input: np.ndarray,
                          index: int,
                          img_path: Optional[str] = None,
                          person_boxes: Optional[np.ndarray] = None,
                          **kwargs) -> List[dict]:
        """The test pipeline's output for each box of one image or frame."""
        height, width = input.shape[:2]
        if person_boxes is None:
            person_boxes = np.array([[0, 0, width, height]], np.float32)
        info = dict(
            img=input,
            img_path=img_path or f'{index:06d}.jpg',
            **self.model.dataset_meta)
        return [
            self.pipeline(
                dict(
                    info,
                    bbox=box[None, :4],
                    # The fifth column, 1 when there is none.
                    bbox_score=np.append(box[4:], 1.0)[:1]))
            for box in person_boxes
        ]

    def predict(self,
                image: np.ndarray,
                img_path: str,
                out_dir: str,
                person_boxes: Optional[np.ndarray] = None,
                kpt_thr: float = 0.3) -> InstanceData:
        """The people of one image, drawn into ``out_dir`` (same file name
        as ``img_path``); no box (an empty array) draws and predicts
        nobody, where MMPose would make the whole image one person."""
        if person_boxes is not None and not len(person_boxes):
            mmcv.imwrite(image, osp.join(out_dir, osp.basename(img_path)))
            return InstanceData()
        result = next(
            self(
                image,
                return_datasamples=True,
                img_path=img_path,
                person_boxes=person_boxes,
                # A folder: without the slash a dot in its name would read
                # as a file extension.
                vis_out_dir=osp.join(out_dir, ''),
                kpt_thr=kpt_thr,
                **DRAW_OPTIONS))
        return result['predictions'][0].pred_instances


def coco_results(people: InstanceData, image_id: int,
                 extra: dict) -> List[dict]:
    """COCO-results entries of the people of one image; ``score`` is the
    mean keypoint score times the box score, as MMPose's top-down COCO
    evaluation rescores people (without its visibility cut)."""
    entries = []
    for i in range(len(people)):
        keypoints = np.asarray(people.keypoints[i], dtype=np.float64)
        scores = np.asarray(people.keypoint_scores[i], dtype=np.float64)
        x1, y1, x2, y2 = (float(v) for v in people.bboxes[i])
        flat = np.concatenate([keypoints, scores[:, None]], axis=1).ravel()
        entries.append(
            dict(
                image_id=int(image_id),
                **extra,
                category_id=1,
                keypoints=[round(float(v), 4) for v in flat],
                score=round(float(scores.mean() * people.bbox_scores[i]), 6),
                bbox=[round(v, 2) for v in (x1, y1, x2 - x1, y2 - y1)]))
    return entries


def coco_images_with_boxes(ann_file: str,
                           img_dir: str,
                           num_images: Optional[int] = None
                           ) -> List[Tuple[str, np.ndarray]]:
    """``(image_path, boxes_xyxy)`` of the first images of a COCO file that
    have annotated people (ground-truth boxes, crowd regions left out)."""
    coco = COCO(ann_file)
    items = []
    for image_id in sorted(coco.getImgIds()):
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id, iscrowd=False))
        boxes = [a['bbox'] for a in anns if a.get('num_keypoints', 0) > 0]
        if boxes:
            items.append((osp.join(img_dir, coco.imgs[image_id]['file_name']),
                          bbox_xywh2xyxy(np.array(boxes, np.float32))))
        if num_images and len(items) == num_images:
            break
    return items


@dataclass
class InferenceSummary:
    """What :func:`run_inference` did; ``kind``: ``'image'``, ``'folder'``
    or ``'video'``; ``skipped``: ``(file, reason)`` of folder images."""
    kind: str
    outputs: List[str] = field(default_factory=list)
    predictions_file: str = ''
    predictions: List[dict] = field(default_factory=list)
    num_frames: int = 0
    skipped: List[Tuple[str, str]] = field(default_factory=list)


def output_path(kind: str, out_dir: str, path: str) -> str:
    """The drawing of an input: same name, ``<stem>.mp4`` for a video."""
    name = osp.basename(path)
    if kind == 'video':
        name = osp.splitext(name)[0] + '.mp4'
    return osp.join(out_dir, name)


def header_size(path: str, kind: str) -> Optional[Tuple[int, int]]:
    """``(height, width)`` of an image or video from its header, without
    decoding it; None when the header cannot be read."""
    if kind == 'video':
        video = mmcv.VideoReader(path)
        size = (video.height, video.width)
        return size if min(size) > 0 else None
    try:
        with Image.open(path) as image:
            return image.height, image.width
    except (OSError, ValueError):  # not an image PIL knows, or unreadable
        return None


def check_request(input_path: str, boxes: PersonBoxes,
                  out_dir: str) -> Tuple[str, List[str]]:
    """:func:`find_inputs`, plus the box source fitting the input kind and
    the outputs leaving the inputs alone. Cheap (image headers only)."""
    kind, files = find_inputs(input_path)
    if kind == 'video' and boxes.by_name is not None:
        raise ConfigError('--det-file matches boxes to image files; for a '
                          'video use --bbox or the whole frame.')
    for path in files:
        if osp.realpath(output_path(kind, out_dir,
                                    path)) == osp.realpath(path):
            raise ConfigError(
                f'--out-dir {out_dir} holds the input {path}, which its '
                'drawing (same file name) would overwrite: choose another '
                '--out-dir.')
    if boxes.fixed is not None:
        sizes = {p: size for p in files if (size := header_size(p, kind))}
        if kind != 'folder':
            for path, size in sizes.items():
                check_bbox(boxes.bbox_xywh, size, path)
        elif sizes and not any(boxes.fits(*size) for size in sizes.values()):
            x, y, w, h = boxes.bbox_xywh
            raise ConfigError(
                f'--bbox {x:g} {y:g} {w:g} {h:g} lies outside every image '
                f'of {input_path}.')
    return kind, files


def run_inference(model,
                  input_path: str,
                  out_dir: str,
                  boxes: Optional[PersonBoxes] = None,
                  kpt_thr: float = 0.3,
                  progress: bool = True) -> InferenceSummary:
    """Predict and draw every person of an image, a folder or a video into
    ``out_dir`` with a top-down ``model`` from :func:`~.loading.init_model`.
    Keypoints scored below ``kpt_thr`` are not drawn (all are saved).

    Raises:
        DataError: Missing or unsupported input, unreadable single image or
            video, a folder with no usable image.
        ConfigError: A detection file used on a video, a fixed box outside
            the image(s), an ``out_dir`` whose outputs would overwrite
            inputs.
    """
    boxes = boxes or PersonBoxes()
    kind, files = check_request(input_path, boxes, out_dir)
    os.makedirs(out_dir, exist_ok=True)
    summary = InferenceSummary(kind=kind)
    run = _run_video if kind == 'video' else _run_images
    run(
        BoxedPoseInferencer(model), files, kind, out_dir, boxes, kpt_thr,
        progress, summary)
    summary.predictions_file = osp.join(out_dir, 'predictions.json')
    with open(summary.predictions_file, 'w', encoding='utf-8') as f:
        json.dump(summary.predictions, f)
    return summary


def load_and_run_inference(config: str,
                           checkpoint: Optional[str],
                           input_path: str,
                           out_dir: str,
                           boxes: Optional[PersonBoxes] = None,
                           kpt_thr: float = 0.3,
                           device: Optional[str] = None,
                           fast: bool = False,
                           progress: bool = True) -> InferenceSummary:
    """What ``tools/infer.py`` runs: :func:`run_inference` with the model of
    ``config`` and ``checkpoint`` (or ``"none"``), on the fast path
    (:func:`~.fast_inference.prepare_for_inference`) if ``fast``.

    Every input is checked before the model loads, so a typo is reported at
    once: the errors of :func:`run_inference`, then a missing file, a
    bottom-up config, a checkpoint that does not fit.
    """
    boxes = boxes or PersonBoxes()
    check_request(input_path, boxes, out_dir)
    cfg = topdown_config(config, checkpoint, 'tools/infer.py')
    model = init_model(cfg, checkpoint, device)
    if fast:
        prepare_for_inference(model)
    return run_inference(model, input_path, out_dir, boxes, kpt_thr, progress)


def _run_images(inferencer: BoxedPoseInferencer, files: List[str], kind: str,
                out_dir: str, boxes: PersonBoxes, kpt_thr: float,
                progress: bool, summary: InferenceSummary) -> None:
    if boxes.by_name is not None and not any(map(boxes.knows, files)):
        raise DataError(
            f'none of the {len(files)} input image(s) is listed in the '
            '--ann-file, so no detection can be matched to them (images are '
            'matched by file name).')
    bar = tqdm(
        files,
        desc='images',
        unit='img',
        disable=not progress or kind != 'folder')
    for index, path in enumerate(bar):
        if not boxes.knows(path):
            # Only reachable for a folder: a single unlisted image fails the
            # check above.
            summary.skipped.append((path, 'not in --ann-file'))
            continue
        try:
            image = read_image(path)
        except DataError:
            if kind == 'image':
                raise
            # One bad file should not cost the user the rest of the folder.
            summary.skipped.append((path, 'unreadable'))
            continue
        if not boxes.fits(*image.shape[:2]):
            if kind == 'image':
                check_bbox(boxes.bbox_xywh, image.shape[:2], path)
            summary.skipped.append((path, '--bbox outside the image'))
            continue
        image_id, person_boxes = boxes.lookup(path)
        people = inferencer.predict(image, path, out_dir, person_boxes,
                                    kpt_thr)
        summary.predictions += coco_results(
            people, index if image_id is None else image_id,
            dict(file_name=osp.basename(path)))
        summary.outputs.append(output_path(kind, out_dir, path))
        summary.num_frames += 1
    if summary.num_frames == 0:
        raise DataError(f'none of the {len(files)} images could be used '
                        f'({_skip_text(summary.skipped)}).')


def _skip_text(skipped: List[Tuple[str, str]]) -> str:
    reasons: Dict[str, List[str]] = {}
    for path, reason in skipped:
        reasons.setdefault(reason, []).append(osp.basename(path))
    return '; '.join(f'{reason}: {", ".join(names)}'
                     for reason, names in reasons.items())


def _run_video(inferencer: BoxedPoseInferencer, files: List[str], kind: str,
               out_dir: str, boxes: PersonBoxes, kpt_thr: float,
               progress: bool, summary: InferenceSummary) -> None:
    out_file = output_path(kind, out_dir, files[0])
    frames = inferencer(
        files[0],
        return_datasamples=True,
        person_boxes=boxes.fixed,
        vis_out_dir=out_file,
        kpt_thr=kpt_thr,
        **DRAW_OPTIONS)
    bar = tqdm(
        frames,
        total=mmcv.VideoReader(files[0]).frame_cnt or None,
        desc='frames',
        unit='frame',
        disable=not progress)
    for index, result in enumerate(bar):
        summary.predictions += coco_results(
            result['predictions'][0].pred_instances, index, dict(frame=index))
        summary.num_frames += 1
    if not osp.isfile(out_file):
        raise DataError(f'could not write {out_file} (mp4v).')
    summary.outputs.append(out_file)


def print_summary(summary: InferenceSummary, file=sys.stdout) -> None:
    """What was written, and the skipped-images warning on stderr."""
    video = summary.kind == 'video'
    print(
        f'{summary.num_frames} {"frames" if video else "images"}, '
        f'{len(summary.predictions)} people; wrote {summary.predictions_file}',
        file=file)
    drawn = (
        summary.outputs[0] if video else f'{len(summary.outputs)} '
        f'picture(s) to {osp.dirname(summary.predictions_file)}')
    print(f'wrote {drawn}', file=file)
    if summary.skipped:
        print(
            f'warning: skipped {len(summary.skipped)} of '
            f'{summary.num_frames + len(summary.skipped)} images '
            f'({_skip_text(summary.skipped)}).',
            file=sys.stderr)
