"""Image loading that names a bad image file and, in training, skips it."""
from typing import Optional

import mmcv
import numpy as np
from mmengine import fileio
from mmengine.logging import print_log
from mmpose.datasets.transforms import LoadImage
from mmpose.registry import TRANSFORMS

from ...errors import DataError

_JPEG_START, _JPEG_END = b'\xff\xd8', b'\xff\xd9'


def image_problem(img_bytes: bytes) -> Optional[str]:
    """Why these bytes are no usable image, or None. OpenCV decodes a
    truncated JPEG silently (grey rows), hence the end-of-image check."""
    if not img_bytes:
        return 'is empty'
    if (img_bytes.startswith(_JPEG_START)
            and not img_bytes.rstrip(b'\0\r\n ').endswith(_JPEG_END)):
        return 'is a truncated JPEG (no end-of-image marker)'
    return None


@TRANSFORMS.register_module()
class LoadImageOrSkip(LoadImage):
    """MMPose's ``LoadImage`` that reports unusable image files.

    A missing, empty, undecodable or truncated file is, with ``skip=True``
    (training), dropped with a warning naming it and counting this
    process's skips (mmengine's dataset draws another sample); with
    ``skip=False`` (testing: a metric over fewer people is wrong) a
    :class:`DataError` names it. Images already in ``results['img']`` pass.
    """

    def __init__(self, skip: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.skip = skip
        self.skipped = 0

    def transform(self, results: dict) -> Optional[dict]:
        if 'img' in results:
            return super().transform(results)
        path = results['img_path']
        try:
            img_bytes = fileio.get(path, backend_args=self.backend_args)
        except OSError as error:
            return self._unusable(
                path, f'cannot be read ({error.strerror or error})')
        problem = image_problem(img_bytes)
        img = None if problem else mmcv.imfrombytes(
            img_bytes, flag=self.color_type, backend=self.imdecode_backend)
        if img is None:
            return self._unusable(path, problem or 'does not decode')
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = results['ori_shape'] = img.shape[:2]
        return results

    def _unusable(self, path: str, problem: str) -> Optional[dict]:
        if not self.skip:
            raise DataError(f'the image {path} {problem}.')
        self.skipped += 1
        print_log(
            f'skipped a sample: the image {path} {problem} '
            f'({self.skipped} skipped so far by this process)',
            logger='current',
            level=30)
        return None
