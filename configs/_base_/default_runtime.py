# MMPose's runtime, plus the import that registers this package's modules
# and the hooks every run of this package needs (package_runtime.py says
# why each).
_base_ = ['mmpose::_base_/default_runtime.py', './package_runtime.py']

custom_imports = _base_.package_custom_imports
default_hooks = _base_.package_default_hooks
custom_hooks = []
env_cfg = _base_.package_env_cfg
