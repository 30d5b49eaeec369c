import sspose_mm  # noqa: F401  isort: skip (mmpose importable first)
import contextlib
import logging.handlers
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.visualization import Visualizer

from sspose_mm.env import setup_env

# As the tools do (through run_cli): runners built in the tests load
# checkpoints as the tools' do.
setup_env()

# pytest-xdist's workers share the cores: each takes its part of them
# rather than all of them (threads beyond the cores only wait on each other).
if 'PYTEST_XDIST_WORKER_COUNT' in os.environ:
    torch.set_num_threads(
        max(1, (os.cpu_count() or 1) //
            int(os.environ['PYTEST_XDIST_WORKER_COUNT'])))

REPO = Path(__file__).resolve().parents[1]
# Everything the tests read is in the repository: tests/data/README.md says
# where each file comes from and under which licence.
DATA = REPO / 'tests' / 'data'
COCO = DATA / 'coco'
GOLDEN = DATA / 'golden'
QUICKSTART_CONFIG = (
    REPO / 'configs/transpose/'
    'td-hm_transpose-r-a3_2xb8-7e_synthetic-clean-96x72.py')


def coco_excerpt_options(bbox_file: bool = False) -> dict:
    """--cfg-options pointing a TransPose config at the COCO excerpt."""
    options = {}
    for loader in ('train', 'val', 'test'):
        options.update({
            f'{loader}_dataloader.dataset.data_root': str(COCO),
            f'{loader}_dataloader.dataset.ann_file': 'test_coco.json',
            f'{loader}_dataloader.dataset.data_prefix.img': '',
            f'{loader}_dataloader.batch_size': 4,
            f'{loader}_dataloader.num_workers': 0,
            f'{loader}_dataloader.persistent_workers': False,
        })
        if loader != 'train':
            detections = COCO / 'test_coco_det_AP_H_56.json'
            options[f'{loader}_dataloader.dataset.bbox_file'] = (
                str(detections) if bbox_file else None)
            options[f'{loader}_evaluator.ann_file'] = str(COCO /
                                                          'test_coco.json')
    return options


def as_cli(options: dict) -> list:
    return ['--cfg-options'] + [
        f'{k}={"None" if v is None else v}' for k, v in options.items()
    ]


# Every process a test starts carries this variable with a value of its own,
# and so does everything it starts in turn (torchrun's workers run in sessions
# of their own, so a process group does not reach them; the environment does).
# The value starts with this pytest run's own id, so that runs side by side
# on one machine never count (or kill) each other's processes.
LAUNCH_MARK = 'SSPOSE_TEST_LAUNCH'
SESSION_ID = uuid.uuid4().hex
# Commands started since the last test ended (its fixtures' included).
_launched: list = []


def marked_processes(value: str = SESSION_ID) -> list:
    """Pids of live processes started by this run's tests (by one launch if
    ``value`` is its mark), found through their environment."""
    wanted = f'{LAUNCH_MARK}={value}'.encode()
    found = []
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / 'environ').read_bytes().split(b'\0')
        except OSError:  # ended meanwhile, or a zombie
            continue
        if any(item.startswith(wanted) for item in environ):
            found.append(int(entry.name))
    return found


def kill_launch(process: subprocess.Popen, value: str) -> None:
    """SIGKILL ``process``, its group and every process that inherited the
    launch's mark, then reap ``process``."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    for pid in marked_processes(value):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(timeout=60)


@contextlib.contextmanager
def started(command: list,
            env: dict = None,
            **popen_args) -> Iterator[subprocess.Popen]:
    """Start ``command`` from the repository root in a process group of its
    own; on leaving, kill it with everything it started (also on a failed
    assertion or a timeout)."""
    value = f'{SESSION_ID}-{uuid.uuid4().hex}'
    env = dict(env if env is not None else os.environ, **{LAUNCH_MARK: value})
    _launched.append(command)
    process = subprocess.Popen(
        command, cwd=REPO, env=env, start_new_session=True, **popen_args)
    process.launch_mark = value
    try:
        yield process
    finally:
        kill_launch(process, value)


def tool_command(args: list) -> list:
    return args if args[0].endswith('.sh') else [sys.executable] + args


def tool_env(env: dict = None) -> dict:
    """The environment tools get in tests: one thread (bit-identity needs
    equal thread counts, and two busy cores are shared by all)."""
    return dict(
        os.environ,
        PYTHONWARNINGS='ignore',
        OMP_NUM_THREADS='1',
        **(env or {}))


def run_tool(args: list,
             timeout: int = 600,
             env: dict = None) -> subprocess.CompletedProcess:
    """Run a repository tool/script the way a user does, from the repo root;
    past ``timeout`` seconds it is killed with everything it started and
    the test fails with the end of its output."""
    command = tool_command(args)
    with started(
            command,
            env=tool_env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            # Its children hold the pipes open: all of them go first.
            kill_launch(process, process.launch_mark)
            stdout, stderr = process.communicate()
            pytest.fail(f'{" ".join(map(str, args))} ran past {timeout} s: '
                        f'{(stdout + stderr)[-3000:]}')
    return subprocess.CompletedProcess(command, process.returncode, stdout,
                                       stderr)


@pytest.fixture(autouse=True)
def processes_bounded_and_marked(request):
    """A test that leaves a process running fails (and the process is
    killed: an orphaned trainer once ran on for minutes writing
    checkpoints); a test that starts processes must be marked ``slow``, so
    that ``pytest -m "not slow"`` stays the fast tier."""
    yield
    leftovers = marked_processes()
    for pid in leftovers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    launched = list(_launched)
    _launched.clear()
    assert not leftovers, f'the test left processes running: {leftovers}'
    if launched and request.node.get_closest_marker('slow') is None:
        pytest.fail(f'starts {" ".join(map(str, launched[0][:3]))} ... '
                    'but is not marked slow')


def _subclasses(cls: type) -> Iterator[type]:
    yield cls
    for subclass in cls.__subclasses__():
        yield from _subclasses(subclass)


@pytest.fixture(autouse=True)
def fresh_visualizers():
    """Each test's runners draw and log into their own work dir.

    mmengine keeps one visualizer per name for the whole process, and
    MMPose's runtime names it 'visualizer': without this, a runner built in
    a later test reuses the first one, writing into that test's temporary
    folder (deleted once the test has passed)."""
    yield
    for cls in _subclasses(Visualizer):
        cls._instance_dict.clear()


@pytest.fixture
def logged_warnings():
    """Warnings that reach mmengine's current logger (no duplicate filter,
    so each call of print_log is seen)."""
    handler = logging.handlers.BufferingHandler(capacity=1000)
    handler.setLevel(logging.WARNING)
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield handler.buffer
    logger.removeHandler(handler)


@pytest.fixture(scope='session', autouse=True)
def _register_modules():
    from mmpose.utils import register_all_modules
    register_all_modules(init_default_scope=True)
