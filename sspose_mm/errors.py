"""Errors a user can fix: one sentence saying what is wrong and where, the
tools' ``error:`` line (:func:`sspose_mm.cli.run_cli`)."""


class UserError(Exception):
    """An error whose message is meant for the user."""


class ConfigError(UserError, ValueError):
    """A config that names a missing file, an unknown key or a mismatch."""


class DataError(UserError):
    """A dataset file or sample that cannot be used."""


class CheckpointError(UserError, RuntimeError):
    """A checkpoint that cannot be loaded safely or does not fit the model."""


class DeviceError(UserError, RuntimeError):
    """NVIDIA GPUs that the installed PyTorch cannot use."""


class TrainingDiverged(UserError, RuntimeError):
    """A loss became NaN or infinite; nothing after it was saved."""
