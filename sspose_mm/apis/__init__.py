from .config_checks import check_cfg_options, check_config
from .launch import enable_visualization, load_config

__all__ = [
    'check_cfg_options', 'check_config', 'enable_visualization', 'load_config'
]
