"""The tools' one ``error:`` line: :func:`run_cli` prints a
:class:`~sspose_mm.errors.UserError`'s sentence, or one for a failure deep
inside mmengine/mmpose/PyTorch with a plain cause (an unknown config key, an
image that does not decode); anything else is a bug and keeps its traceback.
"""
import os
import re
import sys
from typing import Callable, Optional
from urllib.error import URLError

from ..env import setup_env
from ..errors import UserError
from .checks import closest_registered

_UNKNOWN_KWARG = re.compile(
    r"(\w+)\.__init__\(\) got an unexpected keyword argument '(\w+)'")
_BAD_IMAGE = re.compile(r'failed to load image: (\S+?)`')
_UNKNOWN_TYPE = re.compile(
    r"([\w.]+) is not in the (?:(\w+)::)?([\w ]+?) registry")
# What gloo and the c10d store say when a peer process died or stalled.
_PEER_LOST = re.compile(
    r'(Connection closed by peer|Connection reset by peer|Broken pipe|'
    r'Timed out|timed out|Socket Timeout|DistNetworkError)[^\n]*')


def explain(error: BaseException) -> Optional[str]:
    """One sentence for ``error`` if its cause is the user's input, else None
    (patterns are searched in the whole text: DataLoader workers re-raise
    with the worker's traceback as message)."""
    text = str(error)
    if isinstance(error, UserError):
        if 'Original Traceback' in text:  # re-raised from a worker
            return text.strip().splitlines()[-1].split(': ', 1)[-1]
        return text
    match = _UNKNOWN_KWARG.search(text)
    if isinstance(error, TypeError) and match:
        return (f'unknown config key "{match.group(2)}" for {match.group(1)}:'
                ' check the spelling in the config or --cfg-options.')
    match = _BAD_IMAGE.search(text)
    if match:
        return (f'the image {match.group(1)} could not be read or decoded '
                '(missing, empty or corrupt file).')
    match = _UNKNOWN_TYPE.search(text)
    if isinstance(error, KeyError) and match:
        type_name, registry = match.group(1), match.group(3)
        close = closest_registered(type_name, registry)
        return (f'unknown module type "{type_name}" in the config (no '
                f'{registry} of that name is registered)' +
                (f': did you mean "{close}"?' if close else '.'))
    if isinstance(error, URLError) or 'urlopen error' in text:
        reason = getattr(error, 'reason', None) or text.splitlines()[-1]
        return (f'a download failed ({str(reason)[:120]}): the config names '
                'weights by URL (an init_cfg checkpoint such as '
                'torchvision://resnet50 or https://download.openmmlab.com/...'
                ') and this machine cannot reach it. Download the file where '
                'you can and set that init_cfg.checkpoint to its local path, '
                'or set the init_cfg to None to start from scratch.')
    match = _PEER_LOST.search(text)
    distributed = int(os.environ.get('WORLD_SIZE', '1')) > 1
    if isinstance(error, RuntimeError) and match and distributed:
        rank = os.environ.get('RANK', '?')
        return (f'process {rank} of a distributed run lost its peers '
                f'({match.group(0)[:160].strip()}): another process died or '
                'stopped responding; its own output shows why. This one stops'
                ' instead of waiting (the wait is bounded by '
                'env_cfg.dist_cfg.timeout, in seconds).')
    return None


def run_cli(main: Callable[[], None]) -> None:
    """Run a tool's ``main`` after :func:`sspose_mm.env.setup_env`; user
    errors end it with one line and exit 2."""
    try:
        setup_env()
        main()
    except Exception as error:  # noqa: BLE001 - re-raised unless explained
        message = explain(error)
        if message is None:
            raise
        print(f'error: {message}', file=sys.stderr)
        sys.exit(2)
    # End a distributed run together, as PyTorch asks: torn down at the
    # interpreter's exit while peers were in their last collective, a gloo
    # process once died with SIGABRT.
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
