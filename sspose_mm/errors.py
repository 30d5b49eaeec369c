"""Errors a user can fix, and how command-line tools report them.

A :class:`UserError` carries one sentence saying what is wrong and where.
:func:`run_cli` prints that sentence instead of a traceback; it also
recognises a few failures raised deep inside mmengine/mmpose/PyTorch that
have a plain cause (an unknown config key, an image that does not decode).
Anything else is a bug and keeps its traceback.
"""
import re
import sys
from typing import Callable, Optional


class UserError(Exception):
    """Base class of errors whose message is meant for the user."""


class ConfigError(UserError, ValueError):
    """A config that names a missing file, an unknown key or a mismatch."""


class DataError(UserError):
    """A dataset file or sample that cannot be used."""


class CheckpointError(UserError, RuntimeError):
    """A checkpoint that cannot be loaded safely or does not fit the model."""


_UNKNOWN_KWARG = re.compile(
    r"(\w+)\.__init__\(\) got an unexpected keyword argument '(\w+)'")
_BAD_IMAGE = re.compile(r'failed to load image: (\S+?)`')


def explain(error: BaseException) -> Optional[str]:
    """One sentence for ``error`` if its cause is the user's input, else None.

    DataLoader workers re-raise with the whole worker traceback as message,
    so patterns are searched in the full text.
    """
    if isinstance(error, UserError):
        return str(error)
    text = str(error)
    match = _UNKNOWN_KWARG.search(text)
    if isinstance(error, TypeError) and match:
        return (f'unknown config key "{match.group(2)}" for {match.group(1)}:'
                ' check the spelling in the config or --cfg-options.')
    match = _BAD_IMAGE.search(text)
    if match:
        return (f'the image {match.group(1)} could not be read or decoded '
                '(missing, empty or corrupt file).')
    return None


def run_cli(main: Callable[[], None]) -> None:
    """Run a tool's ``main``; user errors end it with one line and exit 2."""
    try:
        main()
    except Exception as error:  # noqa: BLE001 - re-raised unless explained
        message = explain(error)
        if message is None:
            raise
        print(f'error: {message}', file=sys.stderr)
        sys.exit(2)
