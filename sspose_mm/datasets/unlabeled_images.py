"""Images without labels, for masked-image pretraining.

:class:`UnlabeledImageDataset` lists either every image file under a folder
or the ``images`` of a COCO annotation file (annotations are ignored), so
COCO train2017 or any folder of pictures can feed
:class:`~sspose_mm.models.pretrainers.SSposeMAE`. :class:`RandomResizedCrop`
is the MAE augmentation: torchvision's, on the pipeline's numpy images
(mmcv lite has none).
"""
import json
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.dataset import BaseDataset
from mmengine.utils import scandir
from mmpose.registry import DATASETS, TRANSFORMS
from torch.nn import functional as F
from torchvision.transforms import \
    RandomResizedCrop as TorchvisionRandomResizedCrop

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
            annotations are not read. Empty: list the folder instead
            (sorted, hidden files left out).
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
        found = scandir(
            folder, self.extensions, recursive=True, case_sensitive=False)
        return [osp.join(folder, path) for path in sorted(found)]


@TRANSFORMS.register_module()
class RandomResizedCrop(BaseTransform):
    """torchvision's ``RandomResizedCrop`` on the pipeline's numpy image: the
    official pretraining crop (MAE / SSpose: scale 0.2-1, bicubic).

    The box is torchvision's (``RandomResizedCrop.get_params``): up to 10
    draws from torch's random generator of an area (``scale`` x the image
    area) and an aspect ratio ``w / h`` (log-uniform in ``ratio``), the
    first that fits the image kept, else the central crop of the whole image
    cut to the ``ratio`` range. The crop is resized with antialiasing (the
    filter widens with the downscaling factor, as PIL's, which the official
    pipeline resized with) by ``F.interpolate`` in the image's dtype: for
    uint8 images torch's kernel rounds as PIL does (measured: 0.3% of the
    pixels of a noise image differ, by 1 level; torchvision's v1 resize,
    through float, differs on 11%).

    ``ratio`` is the crop's own ``w / h``, as in torchvision: for an output
    that is not square, a config states the range around the output's
    ``w / h`` (``configs/sspose/_base_/mae_runtime.py``), else the crops are
    stretched on average.

    Required keys: ``img`` (``(H, W, C)`` or ``(H, W)``, uint8 or float).
    Modified: ``img``, ``img_shape``.

    Args:
        input_size (tuple[int, int]): Output ``(w, h)`` (MMPose order).
        scale (tuple[float, float]): Range of the crop area over the image
            area.
        ratio (tuple[float, float]): Range of the crop's ``w / h``.
        interpolation (str): ``'bicubic'`` or ``'bilinear'`` (both
            antialiased).
    """

    _INTERPOLATIONS = ('bicubic', 'bilinear')

    def __init__(self,
                 input_size: Tuple[int, int],
                 scale: Tuple[float, float] = (0.2, 1.0),
                 ratio: Tuple[float, float] = (3. / 4., 4. / 3.),
                 interpolation: str = 'bicubic') -> None:
        super().__init__()
        if interpolation not in self._INTERPOLATIONS:
            raise ValueError(f'interpolation must be one of '
                             f'{self._INTERPOLATIONS}, got {interpolation!r}')
        if not (0 < scale[0] <= scale[1] <= 1 and 0 < ratio[0] <= ratio[1]):
            raise ValueError(f'bad scale {scale} or ratio {ratio} range')
        self.input_size = tuple(input_size)
        self.scale = tuple(scale)
        self.ratio = tuple(ratio)
        self.interpolation = interpolation

    def transform(self, results: dict) -> dict:
        img = results['img']
        planes = torch.from_numpy(
            np.ascontiguousarray(img.reshape(*img.shape[:2],
                                             -1))).movedim(-1, 0)
        top, left, h, w = TorchvisionRandomResizedCrop.get_params(
            planes, self.scale, self.ratio)
        out = F.interpolate(
            planes[None, :, top:top + h, left:left + w],
            self.input_size[::-1],
            mode=self.interpolation,
            align_corners=False,
            antialias=True)[0].movedim(0, -1).numpy()
        results['img'] = np.ascontiguousarray(
            out.reshape(out.shape[:2] + img.shape[2:]))
        results['img_shape'] = results['img'].shape[:2]
        return results
