"""Checkpoint state dicts as the models, hooks and tools read them: key
names, partial loading, whether (and why not) a state dict fits a model."""
import re
from typing import (Any, Callable, Collection, Dict, List, Mapping, Optional,
                    Sequence, Tuple)

from torch import Tensor
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

from ..errors import CheckpointError

StateDict = Dict[str, Tensor]


def strip_prefixes(
    state_dict: Dict[str, Any], prefixes: Sequence[str] = ('module.', )
) -> Dict[str, Any]:
    """Remove each prefix in turn from the keys that start with it, in
    place (renamed keys move to the end); returns ``state_dict``."""
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
    renamed to timm's; other keys (timm's, and ``cls_token``/``pos_embed``,
    named alike in both) unchanged."""
    return {
        rename(key, _MMPRETRAIN_VIT_NAMES): value
        for key, value in state_dict.items()
    }


def _shape(value) -> Tuple[int, ...]:
    return tuple(getattr(value, 'shape', ()))


def drop_reinitialised_keys(state_dict: StateDict, model_state: StateDict,
                            reinit: Sequence[str]) -> List[str]:
    """Remove, in place, the entries of ``state_dict`` (checkpoint weights,
    no ``module.`` prefix) whose key starts with one of the ``reinit``
    prefixes (e.g. ``'head.final_layer'``) and whose shape differs from
    ``model_state``'s, or that the model lacks; the model keeps its fresh
    initialisation there.

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


def listing(keys: Sequence[str], limit: int = 30) -> str:
    """The first ``limit`` keys and how many more (a checkpoint of another
    model can mismatch in hundreds)."""
    shown = ', '.join(keys[:limit])
    return shown + (f' ... and {len(keys) - limit} more'
                    if len(keys) > limit else '')


def key_differences(keys: Collection[str],
                    expected: Collection[str]) -> Tuple[List[str], List[str]]:
    """``(keys not expected, expected keys absent)``, in their orders."""
    known, present = set(expected), set(keys)
    return ([k for k in keys
             if k not in known], [k for k in expected if k not in present])


def has_markers(keys: Collection[str], markers: Sequence[str]) -> bool:
    """Whether each marker starts at least one of the keys."""
    return all(any(k.startswith(m) for k in keys) for m in markers)


def plain_state_dict(loaded: Any, path: Optional[str] = None) -> StateDict:
    """The tensors of a plain state dict, a ``{'state_dict': ...}`` or a
    ``{'model': ...}`` checkpoint, without a DataParallel ``module.``; the
    errors name ``path``, the file it was read from, if given."""
    where = f'the checkpoint {path}: ' if path else ''
    if isinstance(loaded, dict):
        for wrapper in ('state_dict', 'model'):
            if isinstance(loaded.get(wrapper), dict):
                loaded = loaded[wrapper]
                break
    if not isinstance(loaded, dict) or not loaded:
        raise CheckpointError(
            f'{where}it holds no state dict (expected a dict of tensors, or '
            'one under "state_dict" or "model").')
    not_tensors = [
        str(k) for k, v in loaded.items()
        if not isinstance(k, str) or not isinstance(v, Tensor)
    ]
    if not_tensors:
        raise CheckpointError(f'{where}its state dict has entries that are '
                              f'not named tensors: {listing(not_tensors)}.')
    if all(k.startswith('module.') for k in loaded):
        strip_prefixes(loaded)
    return loaded


# Families of this package, more specific first: (name, key prefixes that
# all occur, prefix ``{layers}.{i}.`` of its transformer layers, whose
# ``norm1`` gives the width, and ``(key, dim)`` of the keypoint count).
MODEL_FAMILIES = (
    ('SHaRPose', ('backbone.quality_token', ), 'backbone.blocks',
     ('backbone.keypoint_tokens', 1)),
    ('HigherPose', ('backbone.global_transformer.', ),
     'backbone.global_transformer.layers', ('head.highres_final_layer.weight',
                                            0)),
    ('SSpose MAE pretraining', ('backbone.patch_embed.embed1.',
                                'decoder.mask_token'), 'backbone.layers',
     None),
    ('SSpose-ConvViT', ('backbone.patch_embed.embed1.', 'backbone.fusion.'),
     'backbone.layers', ('head.final_layer.weight', 0)),
    ('SSpose', ('backbone.patch_embed.embed1.', ), 'backbone.layers',
     ('head.final_layer.weight', 0)),
    ('TransPose-H', ('neck.reduce.', 'backbone.stage3.'), 'neck.layers',
     ('head.final_layer.weight', 0)),
    ('TransPose-R', ('neck.reduce.', 'backbone.layer2.'), 'neck.layers',
     ('head.final_layer.weight', 0)),
)

# Top-level module names of MMPose estimators (and this package's MAE).
_MMPOSE_PREFIXES = ('backbone.', 'neck.', 'head.', 'decoder.',
                    'data_preprocessor.')


def has_mmpose_names(keys: Collection[str]) -> bool:
    """Whether all keys are under an MMPose estimator's module names."""
    return bool(keys) and all(k.startswith(_MMPOSE_PREFIXES) for k in keys)


def describe_model(state: Mapping[str, Any]) -> str:
    """What a state dict looks like, as a phrase: a family of this package
    with its size (``'TransPose-R (4 transformer layers of width 256, 17
    keypoints)'``), an MMPose model of another kind, or something else."""
    keys = list(state)
    for name, markers, layers, keypoints in MODEL_FAMILIES:
        if not has_markers(keys, markers):
            continue
        index = re.compile(re.escape(layers) + r'\.(\d+)\.')
        depth = len({m.group(1) for m in map(index.match, keys) if m})
        norm = state.get(f'{layers}.0.norm1.weight')
        width = f' of width {norm.shape[0]}' if norm is not None else ''
        parts = [f'{depth} transformer layers{width}']
        if keypoints and keypoints[0] in state:
            parts.append(
                f'{state[keypoints[0]].shape[keypoints[1]]} keypoints')
        return f'{name} ({", ".join(parts)})'
    if has_mmpose_names(keys):
        return ('an MMPose model this package does not know (first keys: '
                f'{listing(keys, 3)})')
    return f'not a pose model of this package (first keys: {listing(keys, 3)})'


def require_fit(state: Mapping[str, Any],
                own: StateDict,
                path: str,
                model: str,
                describe: Callable = describe_model) -> None:
    """Stop unless ``state``, read from ``path``, holds exactly the tensors
    ``own`` of the model (class name ``model``) with their shapes;
    ``describe`` phrases what a state dict looks like.

    Raises:
        CheckpointError: One sentence: what is missing, extra or reshaped,
            what the file looks like and what the config builds.
    """
    unexpected, missing = key_differences(state, own)
    reshaped = [
        f'{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}' for k in own
        if k in state and hasattr(state[k], 'shape')
        and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f'{len(missing)} of the model\'s {len(own)} tensors '
                        f'are not in it ({listing(missing, 4)})')
    if unexpected:
        problems.append(f'{len(unexpected)} of its tensors are not in the '
                        f'model ({listing(unexpected, 4)})')
    if reshaped:
        problems.append(f'{len(reshaped)} have another shape, checkpoint vs '
                        f'model ({listing(reshaped, 4)})')
    if not problems:
        return
    looks_like, builds = describe(state), describe(own)
    if looks_like == builds:
        hint = ('Is it a checkpoint of another input size or keypoint '
                'count? To fine-tune on another keypoint count use '
                'KeypointTransferHook (docs/datasets.md).')
    else:
        hint = (f'It looks like {looks_like}; the config builds {builds}: '
                'use the config the checkpoint was trained with.')
    raise CheckpointError(
        f'the checkpoint {path} does not fit the model of this config '
        f'({model}): {"; ".join(problems)}. {hint}')
