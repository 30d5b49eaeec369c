"""Drawing predictions of a top-down model, with MMPose's own API."""
import os.path as osp
from typing import List, Optional, Sequence

import mmcv
import numpy as np
from pycocotools.coco import COCO

from .infer import draw_people, predict_people


def draw_topdown_predictions(model,
                             image_path: str,
                             bboxes_xyxy: np.ndarray,
                             out_file: str,
                             kpt_thr: float = 0.3) -> None:
    """Predict every box of one image and save one picture of all skeletons.

    Args:
        model: A top-down pose estimator from
            :func:`sspose_mm.apis.init_model`.
        image_path (str): The image.
        bboxes_xyxy (np.ndarray): ``(N, 4)`` person boxes.
        out_file (str): Where the picture goes.
        kpt_thr (float): Keypoints scored below this are not drawn.
    """
    image = mmcv.imread(image_path)
    drawn = draw_people(model, image, predict_people(model, image,
                                                     bboxes_xyxy), kpt_thr)
    mmcv.imwrite(drawn[..., ::-1], out_file)


def coco_images_with_boxes(ann_file: str,
                           img_dir: str,
                           num_images: Optional[int] = None,
                           image_ids: Optional[Sequence[int]] = None
                           ) -> List[tuple]:
    """``(image_path, boxes_xyxy)`` of the first images of a COCO file that
    have annotated people (ground-truth boxes, crowd regions left out)."""
    coco = COCO(ann_file)
    ids = list(image_ids) if image_ids else sorted(coco.getImgIds())
    items = []
    for image_id in ids:
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id, iscrowd=False))
        boxes = [a['bbox'] for a in anns if a.get('num_keypoints', 0) > 0]
        if not boxes:
            continue
        boxes = np.array(boxes, dtype=np.float32)
        boxes[:, 2:] += boxes[:, :2]
        items.append(
            (osp.join(img_dir,
                      coco.loadImgs(image_id)[0]['file_name']), boxes))
        if num_images and len(items) == num_images:
            break
    return items
