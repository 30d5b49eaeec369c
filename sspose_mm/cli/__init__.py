"""The tools' plumbing: configs read and checked before anything is built
(:mod:`.launch`, :mod:`.checks`), the ``error:`` line (:mod:`.report`)."""
from .checks import check_cfg_options
from .launch import (enable_visualization, find_resume_checkpoint,
                     finish_config, load_config, make_deterministic,
                     naming_malformed_json, parse_runner_arguments,
                     read_config)
from .report import run_cli

__all__ = [
    'check_cfg_options', 'enable_visualization', 'find_resume_checkpoint',
    'finish_config', 'load_config', 'make_deterministic',
    'naming_malformed_json', 'parse_runner_arguments', 'read_config', 'run_cli'
]
