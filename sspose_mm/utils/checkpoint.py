"""Checkpoint state dicts as the models and hooks read them."""
import re
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import torch
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

from ..errors import CheckpointError


def strip_prefixes(
    state_dict: Dict[str, Any], prefixes: Sequence[str] = ('module.', )
) -> Dict[str, Any]:
    """Remove each prefix in turn from the keys that start with it, in
    place: ``module.`` of a (Distributed)DataParallel model, ``backbone.``
    of a pose model's weights given to a backbone.

    Returns:
        dict: ``state_dict`` itself (renamed keys move to its end).
    """
    for prefix in prefixes:
        consume_prefix_in_state_dict_if_present(state_dict, prefix)
    return state_dict


def rename(key: str, prefixes: Sequence[Tuple[str, str]]) -> str:
    """``key`` with the first ``(old, new)`` prefix it starts with replaced
    (unchanged when none fits); a ``*`` in both stands for a layer index."""
    for old, new in prefixes:
        match = re.match(re.escape(old).replace(r'\*', r'(\d+)'), key)
        if match:
            index = match.group(1) if match.re.groups else ''
            return new.replace('*', index) + key[match.end():]
    return key


def swap(pairs: Sequence[Tuple[str, str]]) -> Tuple[Tuple[str, str], ...]:
    """``(old, new)`` pairs the other way round."""
    return tuple((new, old) for old, new in pairs)


# mmpretrain's VisionTransformer (the MAE weights of MMPose's ViTPose
# configs) -> timm's names (facebookresearch's MAE, SHaRPoseViT).
_MMPRETRAIN_VIT_NAMES = (*((f'layers.*.{old}', f'blocks.*.{new}')
                           for old, new in (('ln1.', 'norm1.'),
                                            ('ln2.', 'norm2.'),
                                            ('ffn.layers.0.0.', 'mlp.fc1.'),
                                            ('ffn.layers.1.', 'mlp.fc2.'),
                                            ('attn.', 'attn.'))),
                         ('patch_embed.projection.',
                          'patch_embed.proj.'), ('ln1.', 'norm.'))


def timm_vit_names(state_dict: Dict[str, Any]) -> Dict[str, Any]:
    """A ViT state dict (keys without ``backbone.``) with mmpretrain's names
    (``layers.i.ln1``, ``layers.i.ffn.layers.0.0``, ``patch_embed.projection``,
    the final ``ln1``) renamed to timm's (``blocks.i.norm1``,
    ``blocks.i.mlp.fc1``, ``patch_embed.proj``, ``norm``); other keys, timm's
    and ``cls_token``/``pos_embed`` (named alike in both), unchanged."""
    return {
        rename(key, _MMPRETRAIN_VIT_NAMES): value
        for key, value in state_dict.items()
    }


def _shape(value) -> Tuple[int, ...]:
    return tuple(getattr(value, 'shape', ()))


def drop_reinitialised_keys(state_dict: Dict[str, torch.Tensor],
                            model_state: Mapping[str, torch.Tensor],
                            reinit: Sequence[str]) -> List[str]:
    """Remove the entries of ``state_dict`` the model must re-initialise.

    An entry is dropped when its key starts with one of the ``reinit``
    prefixes (e.g. ``'head.final_layer'``) and its shape differs from the
    model's, or the model lacks it. ``state_dict`` is changed in place; the
    prefixed keys of the model that are not loaded keep their fresh
    initialisation.

    Args:
        state_dict: Checkpoint weights (keys without a ``module.`` prefix).
        model_state: ``model.state_dict()`` of the model to fill.
        reinit: Key prefixes allowed to be re-initialised.

    Returns:
        Model keys that will not come from the checkpoint, sorted, each as
        ``'key (checkpoint shape -> model shape)'``.

    Raises:
        CheckpointError: A key outside ``reinit`` has another shape in the
            checkpoint than in the model, or the checkpoint lacks it (the
            checkpoint is for another architecture).
    """
    prefixes = tuple(reinit)
    conflicts, dropped = [], []
    for key in list(state_dict):
        ckpt_shape = _shape(state_dict[key])
        model_shape = _shape(model_state[key]) if key in model_state else None
        if model_shape == ckpt_shape:
            continue
        if key.startswith(prefixes):
            del state_dict[key]
            if model_shape is not None:
                dropped.append(f'{key} ({ckpt_shape} -> {model_shape})')
        elif model_shape is not None:
            conflicts.append(f'{key} {ckpt_shape} vs {model_shape}')
    if conflicts:
        raise CheckpointError(
            f'{len(conflicts)} checkpoint weights outside the layers to '
            f're-initialise ({", ".join(prefixes) or "none"}) do not fit the '
            f'model (checkpoint vs model shape): {"; ".join(conflicts[:5])}'
            f'{" ..." if len(conflicts) > 5 else ""}. The checkpoint is for '
            'another architecture or input size.')
    missing = [
        k for k in model_state
        if k not in state_dict and not k.startswith(prefixes)
    ]
    if missing:
        raise CheckpointError(
            f'the checkpoint lacks {len(missing)} weights of the model '
            f'outside the layers to re-initialise: {", ".join(missing[:5])}'
            f'{" ..." if len(missing) > 5 else ""}. It is for another '
            'architecture.')
    for key in model_state:
        if key.startswith(prefixes) and key not in state_dict and not any(
                entry.startswith(key + ' ') for entry in dropped):
            dropped.append(f'{key} (not in checkpoint -> '
                           f'{_shape(model_state[key])})')
    return sorted(dropped)


def describe_reinitialised(keys: Sequence[str]) -> str:
    """One log line naming every re-initialised key."""
    if not keys:
        return ('keypoint transfer: every weight comes from the checkpoint '
                '(no key re-initialised)')
    return (f'keypoint transfer: {len(keys)} keys re-initialised, all other '
            f'weights loaded from the checkpoint: {", ".join(keys)}')
