"""What MMPose needs to import on this stack (so ``custom_imports`` of
``sspose_mm`` is all its tools need), and nothing else: mmcv-lite has no
compiled ops, but mmpose imports ``mmcv.ops`` (EDPose). Without ``mmcv._ext``
a placeholder lets the import succeed; calling an op raises a RuntimeError
naming it and how to get compiled ops."""
import contextlib
import importlib.machinery
import importlib.util
import sys
import types


def _install_mmcv_ext_placeholder() -> None:
    if 'mmcv._ext' in sys.modules:
        return
    with contextlib.suppress(ImportError, ValueError):
        if importlib.util.find_spec('mmcv._ext') is not None:
            return
    placeholder = types.ModuleType('mmcv._ext')
    # mmengine's mmcv_full_available() inspects __spec__; a spec without an
    # origin makes it report "no compiled ops" instead of raising.
    placeholder.__spec__ = importlib.machinery.ModuleSpec('mmcv._ext', None)

    def __getattr__(name: str):
        # mmcv's ext_loader checks hasattr() for every op at import time, so
        # each op must exist; it fails only when called.
        if name.startswith('__'):
            raise AttributeError(name)

        def missing_op(*args, **kwargs):
            raise RuntimeError(
                f'The mmcv op "{name}" needs compiled mmcv ops, but only '
                'mmcv-lite is installed. sspose_mm models use no mmcv op, and '
                'tools/infer.py needs no detector (--bbox, --det-file or the '
                'whole image); for a detector or other models build mmcv '
                'with ops as docs/gpu.md ("Detection on GPU machines") says.')

        missing_op.__name__ = name
        return missing_op

    placeholder.__getattr__ = __getattr__
    sys.modules['mmcv._ext'] = placeholder
    # Bound on the parent as a real import would (`mmcv._ext` works).
    import mmcv
    mmcv._ext = placeholder


_install_mmcv_ext_placeholder()
