from .config_checks import check_cfg_options, check_config
from .inference import coco_images_with_boxes, draw_topdown_predictions
from .launch import enable_visualization, load_config

__all__ = [
    'check_cfg_options', 'check_config', 'coco_images_with_boxes',
    'draw_topdown_predictions', 'enable_visualization', 'load_config'
]
