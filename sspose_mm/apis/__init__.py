from .attention import collect_attention, recording_attention
from .attention_figure import attention_for_crop, draw_attention_figure
from .config_checks import check_cfg_options, check_config
from .convert import (CHECKPOINT_LAYOUTS, CheckpointLayout,
                      convert_checkpoint, convert_state_dict,
                      describe_state_dict)
from . import checkpoint_layouts  # noqa: F401,E402  (registers layouts)
from .infer import PersonBoxes, run_inference
from .inference import coco_images_with_boxes, draw_topdown_predictions
from .loading import check_checkpoint_fits, init_model
from .partial_load import load_for_transfer  # noqa: F401
from .launch import (add_runner_arguments, enable_visualization, load_config,
                     parse_runner_arguments)

__all__ = [
    'CHECKPOINT_LAYOUTS', 'CheckpointLayout', 'PersonBoxes', 'run_inference',
    'add_runner_arguments', 'attention_for_crop', 'check_cfg_options',
    'check_checkpoint_fits', 'check_config', 'describe_state_dict',
    'init_model', 'coco_images_with_boxes', 'collect_attention',
    'convert_checkpoint', 'convert_state_dict', 'draw_attention_figure',
    'draw_topdown_predictions',
    'enable_visualization', 'load_config', 'parse_runner_arguments',
    'recording_attention'
]
