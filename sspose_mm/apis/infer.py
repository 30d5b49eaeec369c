"""Top-down pose inference on an image, a folder of images or a video.

Person boxes come from one of three sources (:class:`PersonBoxes`):

* one fixed box (``xywh``) used for every image or frame;
* a COCO-results detection file (``image_id``, ``bbox`` xywh, ``score``)
  together with the COCO annotation file that maps ``image_id`` to
  ``file_name``. A results file names images only by id, so the annotation
  file is required; an input image is matched by its base file name to the
  base name of ``file_name``. Boxes with ``score > det_thr`` are kept (the
  same comparison as MMPose's demos);
* nothing: the whole image or frame is one box.

Outputs (:func:`run_inference`) go to one folder: a picture per image (same
file name) or a video (``<stem>.mp4``, mp4v, same fps and size) with the
skeletons drawn by MMPose's ``PoseLocalVisualizer``, and ``predictions.json``
in COCO results format, one entry per person.
"""
import json
import os
import os.path as osp
import sys
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmengine.config import Config
from mmpose.apis import inference_topdown
from mmpose.models import TopdownPoseEstimator
from mmpose.registry import MODELS, VISUALIZERS
from mmpose.structures import PoseDataSample, merge_data_samples
from PIL import Image
from tqdm import tqdm

from ..errors import ConfigError, DataError
from .fast_inference import prepare_for_inference
from .loading import check_model_files, init_model

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv')
PREDICTIONS_FILE = 'predictions.json'


class PersonBoxes:
    """Where the person boxes of an image come from (see the module doc).

    Args:
        bbox_xywh: One box ``(x, y, w, h)`` for every image and frame.
        det_file: COCO-results detection file; needs ``ann_file``.
        ann_file: COCO annotation file giving each ``image_id`` its
            ``file_name``.
        det_thr: Detections scored at or below this are dropped.
    """

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
        self.fixed: Optional[np.ndarray] = None
        if bbox_xywh is not None:
            self.fixed = check_bbox(bbox_xywh)
        # base file name -> (image_id, boxes xyxy (N, 4), scores (N,))
        self.by_name: Optional[Dict[str, Tuple[int, np.ndarray,
                                               np.ndarray]]] = None
        if det_file is not None:
            self.by_name = _load_detections(det_file, ann_file, det_thr)

    @property
    def uses_detections(self) -> bool:
        return self.by_name is not None

    def fits(self, height: int, width: int) -> bool:
        """False only for a fixed box lying wholly outside the image."""
        return self.fixed is None or box_on_image(self.fixed[0], height, width)

    def require_fit(self, path: str, height: int, width: int) -> None:
        """Stop when a fixed box lies wholly outside the image ``path``."""
        if self.fixed is not None:
            check_bbox(self.bbox_xywh, (height, width), path)

    def knows(self, file_name: str) -> bool:
        """Whether boxes can be given for this file (always, except for a
        detection file whose annotation file does not list the image)."""
        return self.by_name is None or osp.basename(file_name) in self.by_name

    def lookup(self, file_name: Optional[str], height: int,
               width: int) -> Tuple[Optional[int], np.ndarray, np.ndarray]:
        """``(coco_image_id or None, boxes_xyxy (N, 4), box_scores (N,))``."""
        if self.by_name is not None:
            return self.by_name[osp.basename(file_name)]
        if self.fixed is not None:
            return None, self.fixed.copy(), np.ones(1, np.float32)
        whole = np.array([[0, 0, width, height]], dtype=np.float32)
        return None, whole, np.ones(1, np.float32)


def box_on_image(xyxy: Sequence[float], height: int, width: int) -> bool:
    """Whether a box overlaps the image at all."""
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    return x1 < width and y1 < height and x2 > 0 and y2 > 0


def check_bbox(bbox_xywh: Sequence[float],
               image_hw: Optional[Tuple[int, int]] = None,
               image_path: str = '') -> np.ndarray:
    """The ``(1, 4)`` xyxy box of ``--bbox X Y W H``; refuses an empty box
    and, given the image size, a box wholly outside the image.

    A box only partly inside is accepted: detectors often return such boxes
    and the affine crop pads with black like at test time.
    """
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


def _load_detections(det_file: str, ann_file: str, det_thr: float
                     ) -> Dict[str, Tuple[int, np.ndarray, np.ndarray]]:
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
    grouped: Dict[int, List[Tuple[List[float], float]]] = {}
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
        grouped.setdefault(image_id, []).append(([x, y, x + w, y + h], score))
    by_name = {}
    for image_id, name in names.items():
        found = grouped.get(image_id, [])
        boxes = np.array([b for b, _ in found], np.float32).reshape(-1, 4)
        scores = np.array([s for _, s in found], np.float32)
        by_name[name] = (image_id, boxes, scores)
    return by_name


def require_topdown(cfg: Config, tool: str) -> None:
    """Stop ``tool`` unless ``cfg`` builds a top-down estimator.

    The tools predict the people of given boxes; a bottom-up model run that
    way fails deep inside (or draws nonsense), so it is refused before the
    model loads. An unknown model type passes: building reports it.
    """
    model_type = cfg.model.get('type')
    estimator = (
        MODELS.get(model_type) if isinstance(model_type, str) else model_type)
    if estimator is None or issubclass(estimator, TopdownPoseEstimator):
        return
    raise ConfigError(
        f'{tool} is top-down only (it predicts people in person boxes), but '
        f'the config builds a {estimator.__name__}; for a bottom-up model '
        'use mmpose.apis.inference_bottomup in Python, or tools/test.py to '
        'evaluate it.')


def find_inputs(input_path: str) -> Tuple[str, List[str]]:
    """``('image' | 'folder' | 'video', files)`` for an input path.

    A folder gives its images (not recursive, sorted by name); other files in
    it are ignored.
    """
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


def read_image(path: str) -> Optional[np.ndarray]:
    """The image as BGR (what MMPose's ``LoadImage`` gives the model), or
    None when it cannot be read or decoded."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


def predict_people(model, image_bgr: np.ndarray,
                   boxes_xyxy: np.ndarray) -> List[PoseDataSample]:
    """One data sample per box; none when there are no boxes.

    ``inference_topdown`` treats an empty box list as "the whole image", which
    would invent a person in an image where the detector found nobody.
    """
    if len(boxes_xyxy) == 0:
        return []
    return inference_topdown(model, image_bgr, boxes_xyxy, 'xyxy')


def coco_results(samples: Sequence[PoseDataSample], box_scores: np.ndarray,
                 image_id: int, extra: dict) -> List[dict]:
    """COCO-results entries (one per person) for the samples of one image.

    ``score`` is the mean keypoint score times the box score, as MMPose's
    top-down COCO evaluation rescores people (without its visibility cut).
    """
    entries = []
    for sample, box_score in zip(samples, box_scores):
        inst = sample.pred_instances
        keypoints = np.asarray(inst.keypoints[0], dtype=np.float64)
        scores = np.asarray(inst.keypoint_scores[0], dtype=np.float64)
        x1, y1, x2, y2 = (float(v) for v in inst.bboxes[0])
        flat = np.concatenate([keypoints, scores[:, None]], axis=1).ravel()
        entries.append(
            dict(
                image_id=int(image_id),
                **extra,
                category_id=1,
                keypoints=[round(float(v), 4) for v in flat],
                score=round(float(scores.mean() * box_score), 6),
                bbox=[round(v, 2) for v in (x1, y1, x2 - x1, y2 - y1)]))
    return entries


def pose_visualizer(model, name: str = 'sspose_infer'):
    """MMPose's ``PoseLocalVisualizer`` set up for ``model``'s skeleton.

    mmengine keeps visualizers as named global instances; building a second
    one under the same name warns and returns the first, so an existing
    instance is fetched instead.
    """
    from mmpose.visualization import PoseLocalVisualizer
    if PoseLocalVisualizer.check_instance_created(name):
        visualizer = PoseLocalVisualizer.get_instance(name)
    else:
        visualizer = VISUALIZERS.build(
            dict(
                type='PoseLocalVisualizer', radius=3, line_width=2, name=name))
    visualizer.set_dataset_meta(model.dataset_meta)
    return visualizer


def draw_people(model,
                image_bgr: np.ndarray,
                samples: Sequence[PoseDataSample],
                kpt_thr: float = 0.3,
                visualizer=None) -> np.ndarray:
    """The image (RGB) with boxes and skeletons drawn by MMPose.

    It takes an image already in memory (a video frame has no file) and
    predictions already made (they are also written to JSON, so the model
    runs once per image). Pass ``visualizer`` (:func:`pose_visualizer`) to
    set it up once for many frames.
    """
    image_rgb = np.ascontiguousarray(image_bgr[..., ::-1])
    if not samples:
        return image_rgb
    visualizer = visualizer or pose_visualizer(model)
    return visualizer.add_datasample(
        'prediction',
        image_rgb,
        merge_data_samples(list(samples)),
        draw_gt=False,
        draw_bbox=True,
        kpt_thr=kpt_thr)


@dataclass
class InferenceSummary:
    """What :func:`run_inference` did.

    Attributes:
        kind: ``'image'``, ``'folder'`` or ``'video'``.
        outputs: Pictures or the video written.
        predictions_file: The COCO-results JSON.
        predictions: Its entries.
        num_frames: Images or frames predicted.
        skipped: ``(file, reason)`` of folder images left out.
    """
    kind: str
    outputs: List[str] = field(default_factory=list)
    predictions_file: str = ''
    predictions: List[dict] = field(default_factory=list)
    num_frames: int = 0
    skipped: List[Tuple[str, str]] = field(default_factory=list)


def output_path(kind: str, out_dir: str, path: str) -> str:
    """Where the drawing of an input goes: same name, ``<stem>.mp4`` for a
    video."""
    name = osp.basename(path)
    if kind == 'video':
        name = osp.splitext(name)[0] + '.mp4'
    return osp.join(out_dir, name)


def header_size(path: str, kind: str) -> Optional[Tuple[int, int]]:
    """``(height, width)`` of an image or video from its header, without
    decoding it; None when the header cannot be read."""
    if kind == 'video':
        cap = cv2.VideoCapture(path)
        size = (int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)))
        cap.release()
        return size if min(size) > 0 else None
    try:
        with Image.open(path) as image:
            return image.height, image.width
    except (OSError, ValueError):  # not an image PIL knows, or unreadable
        return None


def check_request(input_path: str, boxes: PersonBoxes,
                  out_dir: str) -> Tuple[str, List[str]]:
    """:func:`find_inputs`, plus the box source fitting the input kind and
    the outputs leaving the inputs alone.

    Cheap (image headers only), so a command-line tool can call it before
    loading the model.
    """
    kind, files = find_inputs(input_path)
    if kind == 'video' and boxes.uses_detections:
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
        sizes = {path: header_size(path, kind) for path in files}
        sizes = {path: size for path, size in sizes.items() if size}
        if kind != 'folder':
            for path, size in sizes.items():
                boxes.require_fit(path, *size)
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
    """Predict and draw every person of an image, a folder or a video.

    Args:
        model: A top-down pose estimator from
            :func:`sspose_mm.apis.init_model`.
        input_path: An image, a folder of images or a video file.
        out_dir: Output folder (created).
        boxes: Person boxes; default the whole image or frame.
        kpt_thr: Keypoints scored below this are not drawn (all are saved).
        progress: Show a progress bar for folders and videos.

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
    if kind == 'video':
        _run_video(model, files[0], out_dir, boxes, kpt_thr, progress, summary)
    else:
        _run_images(model, files, kind, out_dir, boxes, kpt_thr, progress,
                    summary)
    summary.predictions_file = osp.join(out_dir, PREDICTIONS_FILE)
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
    """What ``tools/infer.py`` runs: :func:`run_inference` with the
    top-down model of ``config`` and ``checkpoint`` (all of it, or
    ``"none"``: :func:`~sspose_mm.apis.loading.init_model`), on the fast
    path (:func:`~.fast_inference.prepare_for_inference`) if ``fast``.

    Every input is checked before the model loads (seconds), so a typo is
    reported at once: the errors of :func:`run_inference`, then a missing
    file, a bottom-up config, a checkpoint that does not fit.
    """
    boxes = boxes or PersonBoxes()
    check_request(input_path, boxes, out_dir)
    check_model_files(config, checkpoint)
    cfg = Config.fromfile(config)
    require_topdown(cfg, 'tools/infer.py')
    model = init_model(cfg, checkpoint, device)
    if fast:
        prepare_for_inference(model)
    return run_inference(model, input_path, out_dir, boxes, kpt_thr, progress)


def _run_images(model, files: List[str], kind: str, out_dir: str,
                boxes: PersonBoxes, kpt_thr: float, progress: bool,
                summary: InferenceSummary) -> None:
    if boxes.uses_detections and not any(boxes.knows(f) for f in files):
        raise DataError(
            f'none of the {len(files)} input image(s) is listed in the '
            '--ann-file, so no detection can be matched to them (images are '
            'matched by file name).')
    visualizer = pose_visualizer(model)
    bar = tqdm(
        files,
        desc='images',
        unit='img',
        disable=not progress or kind != 'folder')
    for index, path in enumerate(bar):
        name = osp.basename(path)
        if not boxes.knows(path):
            # Only reachable for a folder: a single unlisted image fails the
            # check above.
            summary.skipped.append((path, 'not in --ann-file'))
            continue
        image = read_image(path)
        if image is None:
            if kind == 'image':
                raise DataError(f'the image {path} could not be read or '
                                'decoded (empty or corrupt file).')
            # One bad file should not cost the user the rest of the folder.
            summary.skipped.append((path, 'unreadable'))
            continue
        if not boxes.fits(*image.shape[:2]):
            if kind == 'image':
                boxes.require_fit(path, *image.shape[:2])
            summary.skipped.append((path, '--bbox outside the image'))
            continue
        image_id, xyxy, scores = boxes.lookup(path, *image.shape[:2])
        samples = predict_people(model, image, xyxy)
        summary.predictions += coco_results(
            samples, scores, index if image_id is None else image_id,
            dict(file_name=name))
        out_file = output_path(kind, out_dir, path)
        drawn = draw_people(model, image, samples, kpt_thr, visualizer)
        if not cv2.imwrite(out_file, np.ascontiguousarray(drawn[..., ::-1])):
            raise DataError(f'could not write {out_file}.')
        summary.outputs.append(out_file)
        summary.num_frames += 1
    bar.close()
    if summary.num_frames == 0:
        raise DataError(f'none of the {len(files)} images could be used '
                        f'({_skip_text(summary.skipped)}).')


def _skip_text(skipped: List[Tuple[str, str]]) -> str:
    reasons: Dict[str, List[str]] = {}
    for path, reason in skipped:
        reasons.setdefault(reason, []).append(osp.basename(path))
    return '; '.join(f'{reason}: {", ".join(names)}'
                     for reason, names in reasons.items())


def skipped_warning(summary: InferenceSummary) -> Optional[str]:
    """One line on the folder images left out, or None."""
    if not summary.skipped:
        return None
    total = summary.num_frames + len(summary.skipped)
    return (f'warning: skipped {len(summary.skipped)} of {total} images '
            f'({_skip_text(summary.skipped)}).')


def _video_frames(cap: cv2.VideoCapture) -> Iterator[np.ndarray]:
    while True:
        ok, frame = cap.read()
        if not ok:
            return
        yield frame


def _run_video(model, path: str, out_dir: str, boxes: PersonBoxes,
               kpt_thr: float, progress: bool,
               summary: InferenceSummary) -> None:
    cap = cv2.VideoCapture(path)
    try:
        ok, first = cap.read() if cap.isOpened() else (False, None)
        if not ok:
            raise DataError(f'the video {path} could not be opened or has no '
                            'readable frame.')
        # Some containers report no fps; 25 keeps the output playable.
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        height, width = first.shape[:2]
        boxes.require_fit(path, height, width)
        out_file = output_path('video', out_dir, path)
        writer = cv2.VideoWriter(out_file, cv2.VideoWriter_fourcc(*'mp4v'),
                                 fps, (width, height))
        if not writer.isOpened():
            raise DataError(f'could not open {out_file} for writing (mp4v).')
        try:
            visualizer = pose_visualizer(model)
            frames = _video_frames(cap)
            bar = tqdm(
                total=count, desc='frames', unit='frame', disable=not progress)
            frame = first
            index = 0
            while frame is not None:
                _, xyxy, scores = boxes.lookup(None, height, width)
                samples = predict_people(model, frame, xyxy)
                summary.predictions += coco_results(samples, scores, index,
                                                    dict(frame=index))
                drawn = draw_people(model, frame, samples, kpt_thr, visualizer)
                writer.write(np.ascontiguousarray(drawn[..., ::-1]))
                index += 1
                bar.update(1)
                frame = next(frames, None)
            bar.close()
        finally:
            writer.release()
        summary.outputs.append(out_file)
        summary.num_frames = index
    finally:
        cap.release()


def print_summary(summary: InferenceSummary, file=sys.stdout) -> None:
    """What was written, and the skipped-images warning on stderr."""
    people = len(summary.predictions)
    what = 'frames' if summary.kind == 'video' else 'images'
    print(
        f'{summary.num_frames} {what}, {people} people; wrote '
        f'{summary.predictions_file}',
        file=file)
    if summary.kind == 'video':
        print(f'wrote {summary.outputs[0]}', file=file)
    else:
        print(
            f'wrote {len(summary.outputs)} picture(s) to '
            f'{osp.dirname(summary.predictions_file)}',
            file=file)
    warning = skipped_warning(summary)
    if warning:
        print(warning, file=sys.stderr)
