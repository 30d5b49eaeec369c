"""The package's public Python API: model loading, inference, attention
maps, checkpoint conversion."""
from . import checkpoint_layouts  # noqa: F401  (registers the layouts)
from .attention import collect_attention, recording_attention
from .attention_figure import attention_for_crop, draw_attention_figure
from .convert import (CHECKPOINT_LAYOUTS, CheckpointLayout, convert_checkpoint,
                      convert_state_dict, describe_state_dict)
from .infer import (BoxedPoseInferencer, PersonBoxes, coco_images_with_boxes,
                    run_inference)
from .loading import check_checkpoint_fits, init_model, load_for_transfer

__all__ = [
    'BoxedPoseInferencer', 'CHECKPOINT_LAYOUTS', 'CheckpointLayout',
    'PersonBoxes', 'attention_for_crop', 'check_checkpoint_fits',
    'coco_images_with_boxes', 'collect_attention', 'convert_checkpoint',
    'convert_state_dict', 'describe_state_dict', 'draw_attention_figure',
    'init_model', 'load_for_transfer', 'recording_attention', 'run_inference'
]
