"""Images without labels, for masked-image pretraining (SSposeMAE): a folder
of pictures or COCO's ``images``, and the MAE crop (torchvision's
``RandomResizedCrop`` on numpy images; mmcv lite has none).
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

    Each sample is ``{'img_path', 'img_id'}`` before the pipeline. With an
    ``ann_file`` (a COCO-style JSON) the samples are its
    ``images[*].file_name`` under ``data_prefix['img']`` (annotations
    unread); without, every file under that folder (recursively, sorted,
    hidden files left out) with one of the ``extensions``
    (case-insensitive). Other arguments are mmengine ``BaseDataset``'s.
    """

    METAINFO = dict(dataset_name='unlabeled_images')

    def __init__(self,
                 data_prefix: Optional[dict] = None,
                 extensions: Sequence[str] = IMAGE_EXTENSIONS,
                 **kwargs) -> None:
        self.extensions = tuple(e.lower() for e in extensions)
        super().__init__(data_prefix=data_prefix or dict(img=''), **kwargs)

    def load_data_list(self) -> List[dict]:
        folder = self.data_prefix.get('img', '')
        paths = (
            self._coco_images(folder)
            if self.ann_file else self._folder_images(folder))
        if not paths:
            raise DataError(f'UnlabeledImageDataset found no images in '
                            f'{self.ann_file or folder} (extensions '
                            f'{self.extensions}).')
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
    """torchvision's ``RandomResizedCrop`` (its ``get_params`` box) on the
    pipeline's ``(H, W[, C])`` numpy image: the official pretraining crop.

    The crop is resized to ``input_size`` ``(w, h)`` with antialiasing (as
    PIL, which the official pipeline used) by ``F.interpolate`` in the
    image's dtype: for uint8, torch rounds as PIL (measured: 0.3% of a noise
    image's pixels differ, by 1 level; torchvision's v1 resize: 11%).
    ``ratio`` is the crop's own ``w / h``: for a non-square output a config
    centres it on the output's (``configs/sspose/_base_/mae_runtime.py``),
    else crops are stretched on average. Modifies ``img``, ``img_shape``.
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
