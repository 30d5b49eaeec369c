"""Official checkpoints -> MMPose checkpoints of this package.

A :class:`CheckpointLayout` (registered in :data:`CHECKPOINT_LAYOUTS`, one
module per family in ``checkpoint_layouts/``) recognises one family of
official checkpoints by its keys and renames every key to this package's
module names. The conversion never guesses: a key the layout does not know,
or one it needs and does not find, stops it with the list of those keys,
and a dropped key (TransPose's fixed sine table) is first checked to equal
what the model computes in its place.
"""
import argparse
import hashlib
import io
import os.path as osp
import re
from typing import Any, Collection, Dict, List, Mapping, Tuple

import numpy as np
import torch
from mmengine.registry import Registry
from numpy.core.multiarray import scalar as numpy_scalar
from torch import nn

from ..errors import CheckpointError
from ..fileio import atomic_write, safe_torch_load, unsafe_global
from ..utils import (StateDict, describe_model, has_markers, has_mmpose_names,
                     key_differences, listing, plain_state_dict, rename, swap)
from ..version import __version__

# Layout classes by the name ``--layout`` takes; built without arguments.
CHECKPOINT_LAYOUTS = Registry('checkpoint layout')


def count_layers(keys: Collection[str], prefix: str) -> int:
    """Layers ``{prefix}{i}.`` in ``keys``: the highest index + 1, so that
    every missing layer below it is listed; 1 without any, so that layer 0
    is listed as missing."""
    index = re.compile(re.escape(prefix) + r'(\d+)\.')
    return max(
        (int(m.group(1)) for m in map(index.match, keys) if m), default=0) + 1


class CheckpointLayout:
    """A family of official checkpoints: what the converter needs of it.

    The official key set is read off this package's modules
    (:meth:`our_modules`) through :attr:`renames` backwards, and
    :meth:`convert` renames forwards: nothing is listed by hand.

    Attributes:
        description (str): One line for the command-line help.
        markers (tuple[str]): Key prefixes that all occur in this layout.
        renames (tuple): ``(official, ours)`` key prefixes, the first match
            wins in both directions (see :func:`rename`).
        drops (tuple[str]): Official keys not stored, after
            :meth:`check_drops`.
        dropped_reason (str): Why :meth:`convert` drops what it drops.
    """

    description: str = ''
    markers: Tuple[str, ...] = ()
    renames: Tuple[Tuple[str, str], ...] = ()
    drops: Tuple[str, ...] = ()
    dropped_reason: str = 'verified equal to what the model computes'

    def matches(self, keys: Collection[str]) -> bool:
        return has_markers(keys, self.markers)

    def our_modules(self, keys: Collection[str]) -> nn.Module:
        """This package's modules for an official checkpoint with these keys
        (layer counts read off them). Only their names are used, so widths
        can be any."""
        raise NotImplementedError

    def to_official(self, key: str) -> List[str]:
        """The official names of one of our keys."""
        return [rename(key, swap(self.renames))]

    def expected_keys(self, keys: Collection[str]) -> List[str]:
        """Every official key, with the layer counts of ``keys``."""
        return [*self.drops] + [
            official for key in self.our_modules(keys).state_dict()
            for official in self.to_official(key)
        ]

    def check_drops(self, state_dict: StateDict) -> None:
        """Raise :class:`CheckpointError` unless the :attr:`drops` hold what
        the model computes in their place."""

    def convert(self, state_dict: StateDict) -> Tuple[StateDict, List[str]]:
        """Official state dict with exactly :meth:`expected_keys` -> (this
        package's state dict, dropped keys); :meth:`check_drops` first."""
        self.check_drops(state_dict)
        return {
            rename(key, self.renames): value
            for key, value in state_dict.items() if key not in self.drops
        }, [key for key in state_dict if key in self.drops]


def convert_state_dict(state_dict: StateDict,
                       layout: str = 'auto'
                       ) -> Tuple[StateDict, str, List[str]]:
    """Convert an official state dict (``module.`` already stripped) in
    memory with a layout of :data:`CHECKPOINT_LAYOUTS`, or the one its keys
    fit (``'auto'``); returns this package's state dict, the layout name and
    the dropped keys.

    Raises:
        CheckpointError: No, several or the wrong layout fits the keys, the
            keys are not exactly the layout's (those listed), or the layout
            refuses them.
    """
    fitting = official_layouts(state_dict)
    known = ', '.join(CHECKPOINT_LAYOUTS.module_dict)
    if layout == 'auto':
        if len(fitting) != 1:
            found = (f'its keys fit {len(fitting)} layouts '
                     f'({", ".join(fitting)})'
                     if fitting else 'its keys fit no known layout')
            raise CheckpointError(
                f'cannot tell the checkpoint layout: {found}; known layouts: '
                f'{known}. First keys: {listing(list(state_dict), 8)}.')
        layout = fitting[0]
    elif layout not in CHECKPOINT_LAYOUTS.module_dict:
        raise CheckpointError(
            f'unknown checkpoint layout {layout!r}; use auto or one of '
            f'{known}.')
    elif layout not in fitting:
        found = (f'they look like {" or ".join(fitting)}'
                 if fitting else 'they fit no known layout')
        raise CheckpointError(f'the keys do not fit the {layout} layout '
                              f'({found}).')
    converter = CHECKPOINT_LAYOUTS.build(dict(type=layout))
    unknown, missing = key_differences(state_dict,
                                       converter.expected_keys(state_dict))
    problems = []
    if unknown:
        problems.append(f'{len(unknown)} key(s) the {layout} layout does not '
                        f'know: {listing(unknown)}')
    if missing:
        problems.append(f'{len(missing)} key(s) of the {layout} layout are '
                        f'missing: {listing(missing)}')
    if problems:
        raise CheckpointError('; '.join(problems) + '.')
    converted, dropped = converter.convert(state_dict)
    return converted, layout, dropped


def official_layouts(keys: Collection[str]) -> List[str]:
    """Names of the official layouts whose markers the keys have."""
    return [
        name for name, layout in CHECKPOINT_LAYOUTS.module_dict.items()
        if layout().matches(keys)
    ]


def describe_state_dict(state: Mapping[str, Any]) -> str:
    """:func:`~sspose_mm.utils.describe_model`, knowing official ones too."""
    official = official_layouts(state)
    if official:
        return (f'an official {" or ".join(official)} checkpoint, not yet '
                'converted (tools/convert_ckpt.py converts it)')
    return describe_model(state)


# What official training scripts store beside the weights (SSpose: the
# command line, an ``argparse.Namespace``; SHaRPose's MMPose 0.x: numpy
# scalars in ``meta``) builds data only: the converter admits exactly that.
RELEASE_METADATA_GLOBALS = [argparse.Namespace, numpy_scalar, np.dtype] + [
    type(np.dtype(code)) for code in '?bhilqBHILQefdgFDG'
]


def _load(path: str, trust: bool) -> Tuple[Any, bool]:
    """(``safe_torch_load`` admitting :data:`RELEASE_METADATA_GLOBALS`,
    whether it needed ``trust``): ``trust`` unpickles a refused file in
    full. The messages are for the converter's user (the generic refusal
    advises this very tool)."""
    try:
        with torch.serialization.safe_globals(RELEASE_METADATA_GLOBALS):
            return safe_torch_load(path, map_location='cpu'), False
    except CheckpointError as error:
        if 'Unsupported global' not in str(error.__cause__):
            raise  # truncated, corrupt or no checkpoint: compat says which
        if trust:
            # This one read only: trusting the path for the whole process
            # would also unpickle whatever is written there later.
            try:
                return torch.load(
                    path, map_location='cpu', weights_only=False), True
            except (ImportError, AttributeError) as missing:
                raise CheckpointError(
                    f'{path} cannot be unpickled here ({missing}): it needs '
                    'the code that saved it importable; save its state dict '
                    'where that code is.') from missing
        name = unsafe_global(error.__cause__)
        what = (f'it needs the Python object {name} to unpickle'
                if name else 'it is not made of tensors and plain data only')
        raise CheckpointError(
            f'Refused to read {path}: {what}, and unpickling it could run '
            'code, so nothing in it was run. Official checkpoints hold '
            'tensors, plain data, the training command line and numpy '
            'scalars; if you trust this file, add --trust-checkpoint: it is '
            'then unpickled in full and only its weights are written.'
        ) from error
    except (EOFError, KeyError, RuntimeError, ValueError) as error:
        raise CheckpointError(f'{path} is not a readable PyTorch checkpoint '
                              f'({error!r}).') from error


def convert_checkpoint(in_path: str,
                       out_path: str,
                       layout: str = 'auto',
                       trust: bool = False) -> Dict[str, Any]:
    """Convert an official checkpoint file into an MMPose checkpoint.

    ``in_path`` holds a state dict, plain or under ``'state_dict'`` or
    ``'model'`` (a ``module.`` prefix on every key is removed), and is read
    with ``torch.load(weights_only=True)``: a file that needs code to
    unpickle is refused and nothing in it runs, unless ``trust``. A file
    already in this package's layout is refused, except a trusted one that
    needed unpickling (a plain MMPose runner checkpoint, a whole pickled
    model): its weights are written alone (layout ``'mmpose'``), for the
    tools to read safely. ``out_path`` gets, atomically, ``{'state_dict',
    'meta': {'source_file', 'source_sha256', 'layout', 'converted_by'}}`` of
    tensors and plain types only, for ``init_model`` or ``load_from``.

    Returns:
        dict: ``layout``, ``num_keys`` (written), ``dropped`` (verified
        official keys not stored), ``out_path``, ``source_sha256``.

    Raises:
        CheckpointError: Missing, unreadable or unsafe input, or keys that
            do not convert; the message names the file and the keys.
    """
    if not osp.isfile(in_path):
        raise CheckpointError(f'checkpoint {in_path} does not exist.')
    if osp.realpath(in_path) == osp.realpath(out_path):
        raise CheckpointError(f'the output {out_path} would overwrite the '
                              'official checkpoint; choose another path.')
    loaded, trusted = _load(in_path, trust)
    if isinstance(loaded, torch.nn.Module):  # a whole pickled model
        loaded = loaded.state_dict()
    meta = loaded.get('meta') if isinstance(loaded, dict) else None
    if isinstance(meta, dict) and 'converted_by' in meta:
        raise CheckpointError(
            f'{in_path} is already converted ({meta["converted_by"]}, from '
            f'{meta.get("source_file")}); use it as it is.')
    try:
        state_dict = plain_state_dict(loaded)
        if (layout == 'auto' and has_mmpose_names(state_dict)
                and not official_layouts(state_dict)):
            if not trusted:
                raise CheckpointError(
                    'it is already in this package\'s layout ('
                    f'{describe_state_dict(state_dict)}): use it directly '
                    '(tools, load_from); there is nothing to convert.')
            layout, dropped = 'mmpose', []
        else:
            state_dict, layout, dropped = convert_state_dict(
                state_dict, layout)
    except CheckpointError as error:
        raise CheckpointError(f'{in_path}: {error}') from error
    digest = hashlib.sha256()
    with open(in_path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    sha256 = digest.hexdigest()
    meta = dict(
        source_file=osp.basename(in_path),
        source_sha256=sha256,
        layout=layout,
        converted_by=f'sspose_mm {__version__}')
    buffer = io.BytesIO()
    torch.save(dict(state_dict=state_dict, meta=meta), buffer)
    atomic_write(out_path, buffer.getvalue())
    return dict(
        layout=layout,
        num_keys=len(state_dict),
        dropped=dropped,
        out_path=out_path,
        source_sha256=sha256)
