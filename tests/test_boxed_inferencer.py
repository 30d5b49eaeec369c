"""BoxedPoseInferencer: MMPose's Pose2DInferencer with the caller's boxes.

The model is the quickstart config with its initial (untrained) weights, so
the tests check which people are predicted and drawn, never accuracy.
"""
import cv2
import numpy as np
import pytest
import torch

from sspose_mm.apis import BoxedPoseInferencer
from conftest import QUICKSTART_CONFIG


@pytest.fixture(scope='module')
def inferencer():
    from mmpose.apis import init_model
    torch.manual_seed(0)
    return BoxedPoseInferencer(
        init_model(str(QUICKSTART_CONFIG), None, device='cpu'))


@pytest.fixture(scope='module')
def image():
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)


def test_given_boxes_and_scores_are_the_people(inferencer, image, tmp_path):
    """MMPose 1.3.2's Pose2DInferencer drops a top-down ``bboxes``
    argument; these boxes must be the ones predicted, with their scores
    (a missing score column counts as 1)."""
    boxes = np.array([[10, 20, 60, 110, 0.9], [70, 5, 150, 100, 0.4]],
                     np.float32)
    people = inferencer.predict(image, 'a.png', str(tmp_path), boxes)
    assert np.allclose(people.bboxes, boxes[:, :4])
    assert np.allclose(people.bbox_scores, boxes[:, 4])
    assert people.keypoints.shape == (2, 17, 2)
    drawn = cv2.imread(str(tmp_path / 'a.png'))
    assert drawn.shape == image.shape and (drawn != image).any()

    people = inferencer.predict(image, 'b.png', str(tmp_path), boxes[:1, :4])
    assert np.allclose(people.bbox_scores, [1.0])


def test_no_box_is_nobody_and_none_is_the_whole_image(inferencer, image,
                                                      tmp_path):
    """MMPose makes an image without boxes one whole-image person; a
    detection file that found nobody in an image must predict nobody."""
    people = inferencer.predict(image, 'empty.png', str(tmp_path),
                                np.zeros((0, 5), np.float32))
    assert len(people) == 0
    assert (cv2.imread(str(tmp_path / 'empty.png')) == image).all()

    people = inferencer.predict(image, 'whole.png', str(tmp_path), None)
    assert np.allclose(people.bboxes, [[0, 0, 160, 120]])
