"""Images without labels, for masked-image pretraining.

:class:`UnlabeledImageDataset` lists either every image file under a folder
or the ``images`` of a COCO annotation file (annotations are ignored), so
COCO train2017 or any folder of pictures can feed
:class:`~sspose_mm.models.pretrainers.SSposeMAE`. :class:`RandomResizedCrop`
is the MAE augmentation (mmcv lite has none).
"""
import json
import math
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.dataset import BaseDataset
from mmpose.registry import DATASETS, TRANSFORMS

from ..errors import DataError

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')


@DATASETS.register_module()
class UnlabeledImageDataset(BaseDataset):
    """A folder of images, or the images of a COCO annotation file.

    Each sample is ``{'img_path', 'img_id'}`` before the pipeline.

    Args:
        data_root (str): Root that relative paths are joined to.
        data_prefix (dict): ``img``: folder of the images (searched
            recursively when there is no ``ann_file``).
        ann_file (str): Optional COCO-style JSON; its ``images[*].file_name``
            (relative to ``data_prefix.img``) are the samples, its
            annotations are not read. Empty: list the folder instead.
        extensions (Sequence[str]): File endings taken from a folder
            (case-insensitive).
        **kwargs: ``pipeline``, ``indices``, ``test_mode``... of mmengine's
            ``BaseDataset``.
    """

    METAINFO = dict(dataset_name='unlabeled_images')

    def __init__(self,
                 data_root: str = '',
                 data_prefix: Optional[dict] = None,
                 ann_file: str = '',
                 extensions: Sequence[str] = IMAGE_EXTENSIONS,
                 **kwargs) -> None:
        self.extensions = tuple(e.lower() for e in extensions)
        super().__init__(
            data_root=data_root,
            ann_file=ann_file,
            data_prefix=data_prefix or dict(img=''),
            **kwargs)

    def load_data_list(self) -> List[dict]:
        folder = self.data_prefix.get('img', '')
        if self.ann_file:
            paths = self._coco_images(folder)
        else:
            paths = self._folder_images(folder)
        if not paths:
            source = self.ann_file or folder
            raise DataError(f'UnlabeledImageDataset found no images in '
                            f'{source} (extensions {self.extensions}).')
        return [dict(img_path=path, img_id=i) for i, path in enumerate(paths)]

    def _coco_images(self, folder: str) -> List[str]:
        if not osp.isfile(self.ann_file):
            raise DataError(f'annotation file {self.ann_file} does not '
                            'exist.')
        with open(self.ann_file) as f:
            images = json.load(f).get('images')
        if not isinstance(images, list) or not all(
                isinstance(i, dict) and 'file_name' in i for i in images):
            raise DataError(f'{self.ann_file} has no COCO "images" list with '
                            'a "file_name" per image.')
        return [osp.join(folder, image['file_name']) for image in images]

    def _folder_images(self, folder: str) -> List[str]:
        if not osp.isdir(folder):
            raise DataError(f'image folder {folder} does not exist.')
        paths = []
        for root, dirs, files in os.walk(folder, followlinks=True):
            dirs.sort()
            paths += [
                osp.join(root, name) for name in sorted(files)
                if name.lower().endswith(self.extensions)
            ]
        return paths


@TRANSFORMS.register_module()
class RandomResizedCrop(BaseTransform):
    """Crop a random area and aspect ratio, resize it to ``input_size``.

    As torchvision's ``RandomResizedCrop`` (MAE: scale 0.2-1, bicubic), with
    the aspect-ratio range taken relative to the output's ``w / h`` so that
    non-square outputs are not stretched on average.

    Required keys: ``img``. Modified: ``img``, ``img_shape``.

    Args:
        input_size (tuple[int, int]): Output ``(w, h)`` (MMPose order).
        scale (tuple[float, float]): Range of the crop area over the image
            area.
        ratio (tuple[float, float]): Range of the crop's aspect ratio over
            the output's.
        interpolation (str): ``'bicubic'``, ``'bilinear'`` or ``'area'``.
    """

    _INTERPOLATIONS = dict(
        bicubic=cv2.INTER_CUBIC,
        bilinear=cv2.INTER_LINEAR,
        area=cv2.INTER_AREA)

    def __init__(self,
                 input_size: Tuple[int, int],
                 scale: Tuple[float, float] = (0.2, 1.0),
                 ratio: Tuple[float, float] = (3. / 4., 4. / 3.),
                 interpolation: str = 'bicubic') -> None:
        super().__init__()
        if interpolation not in self._INTERPOLATIONS:
            raise ValueError(f'interpolation must be one of '
                             f'{sorted(self._INTERPOLATIONS)}, got '
                             f'{interpolation!r}')
        if not (0 < scale[0] <= scale[1] <= 1 and 0 < ratio[0] <= ratio[1]):
            raise ValueError(f'bad scale {scale} or ratio {ratio} range')
        self.input_size = tuple(input_size)
        self.scale = scale
        self.ratio = ratio
        self.interpolation = self._INTERPOLATIONS[interpolation]

    def crop_box(self, height: int, width: int) -> Tuple[int, int, int, int]:
        """Random ``(x, y, w, h)`` inside a ``height x width`` image."""
        out_w, out_h = self.input_size
        log_ratio = np.log(np.array(self.ratio) * out_w / out_h)
        for _ in range(10):
            area = height * width * np.random.uniform(*self.scale)
            aspect = math.exp(np.random.uniform(*log_ratio))
            w = int(round(math.sqrt(area * aspect)))
            h = int(round(math.sqrt(area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                x = np.random.randint(0, width - w + 1)
                y = np.random.randint(0, height - h + 1)
                return x, y, w, h
        # Rarely no sample fits (extreme image shapes): the largest centred
        # crop of the output's aspect ratio.
        w = min(width, int(round(height * out_w / out_h)))
        h = min(height, int(round(w * out_h / out_w)))
        return (width - w) // 2, (height - h) // 2, w, h

    def transform(self, results: dict) -> dict:
        img = results['img']
        x, y, w, h = self.crop_box(*img.shape[:2])
        results['img'] = cv2.resize(
            img[y:y + h, x:x + w],
            self.input_size,
            interpolation=self.interpolation)
        results['img_shape'] = results['img'].shape[:2]
        return results
