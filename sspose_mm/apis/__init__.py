from .config_checks import check_cfg_options, check_config
from .inference import coco_images_with_boxes, draw_topdown_predictions
from .launch import (add_runner_arguments, enable_visualization, load_config,
                     parse_runner_arguments)

__all__ = [
    'add_runner_arguments', 'check_cfg_options', 'check_config', 'coco_images_with_boxes',
    'draw_topdown_predictions', 'enable_visualization', 'load_config',
    'parse_runner_arguments'
]
