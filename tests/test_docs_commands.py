"""Every command that README.md and docs/*.md show works as written.

The shell commands are read from the documents' code blocks: every line of a
```bash (sh, shell, console) block, and the lines of unlabelled or indented
blocks that start with a program (python, ./*.sh, make, pip, ...); other
unlabelled blocks show printed output. Each command is either run, the way a
user types it, with tiny settings through the table of substitutions of its
tool (``TOOLS``), or listed in ``EXCLUDED`` with the reason it is not run;
``test_every_command_is_run_or_excluded`` fails for a command that is
neither. Optional parts (``[--batch 8]``) are included, and each alternative
(``[--bbox X Y W H | --det-file ...]``, ``dependency|affect``) is run.

What the substitutions change, and why: placeholders (CONFIG, CHECKPOINT,
IMAGE, ...) become the quickstart config, checkpoints that are the config's
own model and files in a temporary folder; data becomes the excerpt of the
config's dataset in tests/data, one sample, batch 1; training runs one
epoch (one iteration) without downloading pretrained weights; tests run
without flip testing; process counts become 1; benchmarks and exports run
at batch 1, one repeat, a small input; outputs go to the temporary folder,
so nothing is written into the repository. Official checkpoints for the
converter are the golden reference weights in the official layouts
(tests/data/golden).

Run time: the 40 runs (42 variants, 2 alike once substituted) and the
fixtures' training run take 660 to 760 CPU seconds; about 8 s of each run
is importing torch, mmengine and mmpose. Measured on the 2-core AMD EPYC
shared with other jobs: the whole module in 8.1 minutes at load 3 to 4
(661 CPU s), the runs one at a time in 15 minutes at load 1 to 3. Two run at
a time (``PARALLEL``, one per core left by pytest-xdist's other workers), so
an idle 2-core machine needs about 6 minutes, over
the 4 aimed at: the two HigherPose 512x512 commands alone were 210 CPU s
(one training step and one flip-tested image at 512, attention over 16384
positions) before the tests ran without flip.
"""
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import pytest
import torch
from mmengine.config import Config
from mmpose.apis import init_model

from conftest import (COCO, DATA, QUICKSTART_CONFIG, REPO, as_cli, run_tool,
                      started)

DOCUMENTS = [REPO / 'README.md'] + sorted((REPO / 'docs').glob('*.md'))
SHELL_LANGUAGES = {'bash', 'sh', 'shell', 'console'}
# Where a block does not say it is shell, a line is a command when it starts
# (after VAR=value assignments) with one of these programs.
PROGRAM = re.compile(r'(?:[A-Z_]+=\S*\s+)*(?:python3?|pip3?|make|bash|'
                     r'torchrun|\./\S+\.sh|tools/\S+\.(?:py|sh))(?:\s|$)')
FENCE = re.compile(r'^\s*```\s*(\S*)\s*$')
ASSIGNMENT = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*=')

# Not run, with the reason. Keys are the commands as the documents write
# them (comments removed, whitespace collapsed); an entry no document holds
# any more fails test_exclusions_are_still_in_the_documents.
EXCLUDED = {
    'make quickstart':
    'trains for about 5 minutes on data it generates; what make runs for '
    'it, and that make -n only prints, is test_make_quickstart_*',
    'make test':
    'runs the whole suite, this module included; what make runs for it is '
    'test_make_quickstart_and_test_run_the_venv_python',
    '.venv/bin/python -m pytest -m not slow':
    'runs the fast tier of this suite, which leaves this module out',
    'pip install torch==2.14.1 torchvision==0.29.1 --index-url '
    'https://download.pytorch.org/whl/cu126':
    'installs the CUDA 12 build of torch from PyTorch\'s index, which this '
    'machine cannot reach (docs/gpu.md says so)',
    'pip uninstall -y mmcv-lite':
    'the full-mmcv CUDA build of docs/gpu.md: needs nvcc and a GPU machine '
    '(reasoned there, not built here)',
    'pip install setuptools<80 ninja':
    'the full-mmcv CUDA build, as above',
    'pip download --no-deps --no-binary :all: mmcv==2.1.0 && tar xzf '
    'mmcv-2.1.0.tar.gz && cd mmcv-2.1.0':
    'the full-mmcv CUDA build, as above',
    'sed -i s/-std=c++17/-std=c++20/g setup.py':
    'the full-mmcv CUDA build, as above',
    'CUDA_HOME=/usr/local/cuda-13.0 MMCV_WITH_OPS=1 FORCE_CUDA=1 '
    'TORCH_CUDA_ARCH_LIST=8.0;9.0 MAX_JOBS=8 pip install '
    '--no-build-isolation -v .':
    'the full-mmcv CUDA build, as above',
    'python -c from mmcv.ops import nms; import torch; '
    'print(nms(torch.rand(4, 4).cuda() * 10, torch.rand(4).cuda(), 0.5))':
    'checks compiled ops on a CUDA GPU, which this machine has not',
    'pip install -r requirements/base.txt':
    'installs packages from the registry into the environment (the tests '
    'run in the environment these lines, the Makefile\'s, made)',
    'pip install --no-deps -r requirements/openmmlab.txt':
    'installs packages, as above',
    'pip install --no-deps --no-build-isolation -e .':
    'installs this package, as above',
    'pip install -e .[deploy]':
    'installs the deploy extra (onnx, onnxruntime), which the tests '
    'environment has: the export commands below run with it',
    'pip install -r requirements/deploy.txt':
    'installs the deploy extra, as above',
    'NNODES=2 NODE_RANK=1 MASTER_ADDR=127.0.0.1 PORT=29500 '
    './dist_train.sh CONFIG 1 ... &':
    'one half of a two-launch job, with "..." for any options: the pair is '
    'run as written (two launchers, NNODES=2, 127.0.0.1) by '
    'test_reliability_dist.py::test_two_nodes_train_and_test_like_one_process',
    'NNODES=2 NODE_RANK=0 MASTER_ADDR=127.0.0.1 PORT=29500 '
    './dist_train.sh CONFIG 1 ...':
    'the other half of that job, as above',
}


@dataclass(frozen=True)
class DocCommand:
    """One command of a document, with where it is written."""
    where: str  # 'docs/speed.md:10'
    text: str  # the command as written, comments removed

    @property
    def tokens(self) -> List[str]:
        return self.text.split()

    @property
    def tool(self) -> str:
        """The script or program: 'tools/train.py', './dist_test.sh',
        'make', ..."""
        words = [t for t in self.tokens if not ASSIGNMENT.match(t)]
        if words[0] in ('python', 'python3') and len(words) > 1:
            return words[1]
        return words[0]


def _logical_lines(lines: List[Tuple[int, str]]) -> Iterator[Tuple[int, str]]:
    """Join lines continued with a backslash; drop comments."""
    start, parts = None, []
    for number, line in lines:
        start = number if start is None else start
        if line.rstrip().endswith('\\'):
            parts.append(line.rstrip()[:-1])
            continue
        parts.append(line)
        text = ' '.join(shlex.split(' '.join(parts), comments=True))
        if text:
            yield start, text
        start, parts = None, []


def commands_in(markdown: str, name: str) -> List[DocCommand]:
    """The shell commands of one document's code blocks."""
    found = []
    block, language = None, None
    indented: List[Tuple[int, str]] = []

    def take(lines, every_line):
        for number, text in _logical_lines(lines):
            if every_line or PROGRAM.match(text):
                found.append(DocCommand(f'{name}:{number}', text))

    for number, line in enumerate(markdown.splitlines(), 1):
        fence = FENCE.match(line)
        if block is None and fence:
            take(indented, False)
            block, language, indented = [], fence.group(1).lower(), []
        elif block is not None and fence and not fence.group(1):
            if language in SHELL_LANGUAGES or not language:
                take(block, language in SHELL_LANGUAGES)
            block = None
        elif block is not None:
            block.append((number, line))
        elif line.startswith('    ') and line.strip():
            indented.append((number, line.strip()))
        elif line.strip() and not (indented
                                   and indented[-1][1].endswith('\\')):
            take(indented, False)
            indented = []
    take(indented, False)
    return found


def document_commands() -> List[DocCommand]:
    return [
        command for path in DOCUMENTS for command in commands_in(
            path.read_text(), str(path.relative_to(REPO)))
    ]


def _brackets_apart(tokens: List[str]) -> List[str]:
    """'[--batch', '8]' -> '[', '--batch', '8', ']'."""
    out = []
    for token in tokens:
        opening = len(token) - len(token.lstrip('['))
        closing = len(token) - len(token.rstrip(']'))
        core = token[opening:len(token) - closing]
        out += ['['] * opening + ([core] if core else []) + [']'] * closing
    return out


def variants(tokens: List[str]) -> List[List[str]]:
    """Every way to type the command: optional parts included, one variant
    per alternative ('[A | B]' and 'a|b'); '...' (more of the same) left
    out."""
    stream = iter(_brackets_apart(tokens))

    def expand(items: List[List[List[str]]]) -> List[List[str]]:
        return [sum(choice, []) for choice in itertools.product(*items)]

    def alternatives() -> List[List[str]]:
        """The token lists of one bracket level, up to its ']'. Each item
        is a list of alternatives (token lists)."""
        found, items = [], []
        for token in stream:
            if token == '[':
                items.append(alternatives())
            elif token == '|':
                found, items = found + expand(items), []
            elif token == ']':
                break
            elif token != '...':
                items.append([[word] for word in token.split('|')])
        return found + expand(items)

    return alternatives()


# --- what the substituted commands run on ----------------------------------


def _dataset_excerpt(dataset_type: str) -> Tuple[Path, str, Optional[str]]:
    """Folder, annotation file and detection file of the excerpt of a
    dataset type."""
    return {
        'CocoDataset': (COCO, 'test_coco.json', 'test_coco_det_AP_H_56.json'),
        'MpiiDataset': (DATA / 'mpii', 'test_mpii.json', None),
        'CrowdPoseDataset': (DATA / 'crowdpose', 'test_crowdpose.json',
                             'test_crowdpose_det_AP_40.json'),
        'OCHumanDataset': (DATA / 'ochuman', 'test_ochuman.json', None),
        'UnlabeledImageDataset': (COCO, 'test_coco.json', None),
    }[dataset_type]


class Workspace:
    """Files the substituted commands read and write, in one temporary
    folder; checkpoints are made once per config."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._made: Dict[str, Path] = {}
        self._count = itertools.count()
        self.image = root / '000000000785.jpg'  # a COCO excerpt person
        shutil.copy(COCO / self.image.name, self.image)
        annotations = json.loads((COCO / 'test_coco.json').read_text())
        image_id = next(image['id'] for image in annotations['images']
                        if image['file_name'] == self.image.name)
        self.bbox = next(a['bbox'] for a in annotations['annotations']
                         if a['image_id'] == image_id and a['num_keypoints'])

    def fresh(self, name: str = 'out') -> Path:
        """A new folder under the workspace."""
        path = self.root / f'{name}{next(self._count)}'
        path.mkdir()
        return path

    def once(self, key: str, make: Callable[[Path], None], name: str) -> Path:
        if key not in self._made:
            path = self.fresh('made') / name
            make(path)
            self._made[key] = path
        return self._made[key]

    def checkpoint(self, config: str, prefix: str = '') -> Path:
        """A checkpoint of ``config``'s own model (random weights; the
        quickstart's is trained one iteration by tools/train.py), keys
        starting with ``prefix`` only (an encoder checkpoint: 'backbone.')."""
        if Path(config).resolve() == QUICKSTART_CONFIG and not prefix:
            return self.trained_run() / 'epoch_1.pth'

        def make(path):
            model = init_model(config, None, device='cpu')
            state = {
                k: v
                for k, v in model.state_dict().items() if k.startswith(prefix)
            }
            torch.save({'state_dict': state, 'meta': {}}, path)

        return self.once(f'{config}:{prefix}', make, 'model.pth')

    def converted(self, path: str) -> Path:
        """The file a document's convert command writes to ``path``,
        converted the same way (from the golden stand-in of its input)."""
        from sspose_mm.apis import convert_checkpoint

        return self.once(
            f'converted:{path}', lambda out: convert_checkpoint(
                str(self.official(CONVERTED[path])), str(out)),
            Path(path).name)

    def checkpoint_arg(self, written: str, config: str) -> str:
        """What a checkpoint argument as written stands for."""
        if written == 'none':
            return written
        if written in CONVERTED:
            return str(self.converted(written))
        return str(self.checkpoint(config))

    def trained_run(self) -> Path:
        """Work dir of a one-iteration tools/train.py run of the
        quickstart config (epoch_1.pth, last_checkpoint)."""

        def make(path):
            result = run_tool(
                [
                    'tools/train.py',
                    str(QUICKSTART_CONFIG), '--work-dir',
                    str(path)
                ] + as_cli(training_options(str(QUICKSTART_CONFIG), self)),
                timeout=COMMAND_TIMEOUT)
            assert result.returncode == 0, result.stderr[-3000:]

        return self.once('trained', make, 'work_dir')

    def official(self, name: str) -> Path:
        """The released file ``name`` stood in by the golden reference
        weights in its official layout and container."""
        return self.once(
            f'official:{name}',
            lambda path: torch.save(*OFFICIAL_FILES[name](), path), name)

    def keypoint_file(self) -> Path:
        from sspose_mm.synthetic import COCO_LAYOUT

        return self.once(
            'keypoints', lambda path: path.write_text(
                json.dumps(COCO_LAYOUT.keypoint_spec())), 'keypoints.json')

    def mpii_headboxes(self) -> Path:
        from test_datasets_benchmarks import write_headboxes

        return self.once('headboxes', write_headboxes, 'gt_val.mat')

    def excerpt_config(self, config: str) -> Path:
        """A config file: ``config`` on its excerpts (for tools without
        --cfg-options)."""

        def make(path):
            nested: dict = {}
            for key, value in excerpt_options(config, self).items():
                *parents, last = key.split('.')
                node = nested
                for parent in parents:
                    node = node.setdefault(parent, {})
                node[last] = value
            path.write_text(f'_base_ = [{str(REPO / config)!r}]\n' +
                            ''.join(f'{key} = {value!r}\n'
                                    for key, value in nested.items()))

        return self.once(f'config:{config}', make, Path(config).name)


def _transpose_official():
    from test_transpose_parity import official_state_dict

    # The released TransPose files are bare state dicts.
    return (official_state_dict('transpose-r-a4'), )


def _sharpose_official():
    from test_sharpose_parity import official_state_dict
    return ({'state_dict': official_state_dict('sharpose-b-256x192-a0.4')}, )


def _sspose_official():
    from test_sspose_parity import load_golden
    return ({'model': load_golden()[2]}, )


# What the documents' convert commands write, from which released file.
CONVERTED = {
    command.tokens[3]: Path(command.tokens[2]).name
    for command in document_commands()
    if command.tool == 'tools/convert_ckpt.py'
}
# The released files the documents convert: the golden weights of their
# model in the official layout.
OFFICIAL_FILES = {
    'tp_r_256x192_enc4_d256_h1024_mh8.pth': _transpose_official,
    'sharpose_base_coco_256x192_4xb64_210e.pth': _sharpose_official,
    'SSpose-B-pretrain.pth': _sspose_official,
}


def excerpt_options(config: str, workspace: Workspace) -> dict:
    """--cfg-options putting every dataloader of ``config`` on the excerpt
    of its dataset type: one sample, batch 1, no worker processes."""
    cfg = Config.fromfile(str(REPO / config))
    options = {}
    for phase in ('train', 'val', 'test'):
        loader = cfg.get(f'{phase}_dataloader')
        if not loader:
            continue
        dataset = loader.dataset
        folder, ann_file, det_file = _dataset_excerpt(dataset.type)
        prefix = f'{phase}_dataloader'
        options.update({
            f'{prefix}.batch_size': 1,
            f'{prefix}.num_workers': 0,
            f'{prefix}.persistent_workers': False,
            f'{prefix}.dataset.data_root': str(folder),
            f'{prefix}.dataset.data_prefix.img': '',
            f'{prefix}.dataset.indices': 1,
        })
        if dataset.get('ann_file'):  # else all images of the folder
            options[f'{prefix}.dataset.ann_file'] = ann_file
        if dataset.get('bbox_file'):
            options[f'{prefix}.dataset.bbox_file'] = (
                str(folder / det_file) if det_file else None)
        if dataset.type == 'MpiiDataset' and phase != 'train':
            options[f'{prefix}.dataset.headbox_file'] = str(
                workspace.mpii_headboxes())
        evaluator = cfg.get(f'{phase}_evaluator')
        if evaluator and evaluator.get('ann_file'):
            options[f'{phase}_evaluator.ann_file'] = str(folder / ann_file)
    return options


def training_options(config: str,
                     workspace: Workspace,
                     resume: bool = False) -> dict:
    """The excerpt, one epoch (one more when resuming from the quickstart
    run's first) and one kept checkpoint. Weights the config starts from
    (``load_from``, a ``Pretrained`` backbone) are the documents' converted
    files where a convert command writes them; other pretrained weights are
    a download (torchvision://, https://) or the product of an earlier long
    run (an MAE-pretrained encoder), and are left out."""
    options = dict(
        excerpt_options(config, workspace), **{
            'train_cfg.max_epochs': 2 if resume else 1,
            'default_hooks.checkpoint.max_keep_ckpts': 1,
        })
    cfg = Config.fromfile(str(REPO / config))
    if cfg.get('load_from'):
        options['load_from'] = str(workspace.converted(cfg.load_from))
    init_cfg = cfg.model.get('backbone', {}).get('init_cfg')
    if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
        if init_cfg.checkpoint in CONVERTED:
            options['model.backbone.init_cfg.checkpoint'] = str(
                workspace.converted(init_cfg.checkpoint))
        else:
            options['model.backbone.init_cfg'] = None
    return options


def with_options(args: List[str], options: dict) -> List[str]:
    """``args`` with ``options`` among its --cfg-options, before the
    document's own (mmengine keeps the last value of a key)."""
    extra = as_cli(options)[1:]
    if '--cfg-options' not in args:
        return args + ['--cfg-options'] + extra
    at = args.index('--cfg-options') + 1
    return args[:at] + extra + args[at:]


def set_option(args: List[str], name: str, value: str) -> List[str]:
    """``args`` with option ``name`` given ``value`` (added if absent)."""
    if name not in args:
        return args + [name, value]
    at = args.index(name) + 1
    return args[:at] + [value] + args[at + 1:]


def free_port() -> str:
    from test_runner import free_port as port
    return port()


# A run: (arguments for run_tool, extra environment).
Run = Tuple[List[str], Dict[str, str]]


def _train(args: List[str], ws: Workspace) -> Run:
    config = args[0]
    resume = '--resume' in args
    work_dir = ws.fresh('work')
    if resume:
        at = args.index('--resume') + 1
        if at < len(args) and not args[at].startswith('-'):
            args[at] = str(ws.checkpoint(config))  # --resume FILE
        else:  # --resume: the work dir's last checkpoint
            shutil.copytree(ws.trained_run(), work_dir, dirs_exist_ok=True)
    args = [
        f'load_from={ws.checkpoint(config, "backbone.")}'
        if arg == 'load_from=ENCODER.pth' else arg for arg in args
    ]
    return with_options(
        set_option(args, '--work-dir', str(work_dir)),
        training_options(config, ws, resume)), {}


def _dist_train(args: List[str], ws: Workspace) -> Run:
    run, env = _train([args[0]] + args[2:], ws)
    return ['./dist_train.sh', run[0], '1'] + run[1:], {'PORT': free_port()}


def _test(args: List[str], ws: Workspace) -> Run:
    config = args[0]
    args[1] = ws.checkpoint_arg(args[1], config)
    options = excerpt_options(config, ws)
    # The flipped pass is the same forward on a mirrored image, and the
    # family runner tests (test_runner.py, test_higherpose_runner.py) test
    # with their configs' flip; without it a HigherPose 512 test costs half
    # of its ~100 CPU s.
    if Config.fromfile(str(REPO / config)).model.test_cfg.get('flip_test'):
        options['model.test_cfg.flip_test'] = False
    return with_options(
        set_option(args, '--work-dir', str(ws.fresh('work'))), options), {}


def _dist_test(args: List[str], ws: Workspace) -> Run:
    run, _ = _test(args[:2] + args[3:], ws)
    return (['./dist_test.sh'] + run[:2] + ['1'] + run[2:], {
        'PORT': free_port()
    })


def _convert(args: List[str], ws: Workspace) -> Run:
    return [
        str(ws.official(Path(args[0]).name)),
        str(ws.fresh() / Path(args[1]).name)
    ] + args[2:], {}


def _with_checkpoint(args: List[str], ws: Workspace) -> Run:
    """CONFIG CHECKPOINT ... tools; outputs already redirected."""
    args[1] = ws.checkpoint_arg(args[1], args[0])
    return args, {}


def _infer(args: List[str], ws: Workspace) -> Run:
    args, _ = _with_checkpoint(args, ws)
    return set_option(args, '--out-dir', str(ws.fresh())), {}


def small_input(config: str) -> str:
    """The smallest input the benchmarks and exports run at: bottom-up
    models need 128 for their 1/4 and 1/2 scales."""
    return '128x128' if 'higherpose' in config else '64x48'


def _benchmark(args: List[str], ws: Workspace) -> Run:
    if args[0].startswith('-'):  # --list
        return args, {}
    if '--checkpoint' in args:
        at = args.index('--checkpoint') + 1
        args[at] = ws.checkpoint_arg(args[at], args[0])
    for name, value in (('--batch', '1'), ('--repeat', '1'),
                        ('--threads', '1'), ('--input', small_input(args[0]))):
        args = set_option(args, name, value)
    return args, {}


def _export(args: List[str], ws: Workspace) -> Run:
    args, _ = _with_checkpoint(args, ws)
    args = set_option(args, '--repeat', '1')
    return set_option(args, '--input', small_input(args[0])), {}


def _check_dataset(args: List[str], ws: Workspace) -> Run:
    if not args[0].startswith('-'):
        args[0] = str(ws.excerpt_config(args[0]))
    return args, {}


def _peak_memory(args: List[str], ws: Workspace) -> Run:
    if '--num-crops' in args:
        return set_option(args, '--num-crops', '4'), {}
    return with_options(args, excerpt_options(args[0], ws)), {}


# The substitutions of each tool's arguments (after the placeholders), keyed
# by the tool as the documents call it.
TOOLS: Dict[str, Callable[[List[str], Workspace], Run]] = {
    'tools/train.py': _train,
    './dist_train.sh': _dist_train,
    'tools/test.py': _test,
    './dist_test.sh': _dist_test,
    'tools/convert_ckpt.py': _convert,
    'tools/vis_attention.py': _with_checkpoint,
    'tools/infer.py': _infer,
    'tools/benchmark.py': _benchmark,
    'tools/export_onnx.py': _export,
    'tools/check_dataset.py': _check_dataset,
    'tools/peak_memory.py': _peak_memory,
}


def placeholders(ws: Workspace) -> Dict[str, Callable[[], str]]:
    """What the documents' placeholder words stand for."""
    x, y, w, h = (lambda i: lambda: str(ws.bbox[i]))(0), *(
        (lambda i: lambda: str(ws.bbox[i]))(i) for i in (1, 2, 3))
    output = {
        name: (lambda n: lambda: str(ws.fresh() / n))(name)
        for name in ('fig.png', 'out.onnx', 'tp-r-a4.onnx', 'out.json',
                     'speed.json')
    }
    return dict(
        output,
        **{
            'CONFIG': lambda: str(QUICKSTART_CONFIG.relative_to(REPO)),
            'IMAGE': lambda: str(ws.image),
            'INPUT': lambda: str(ws.image),
            'X': x,
            'Y': y,
            'W': w,
            'H': h,
            'x': x,
            'y': y,
            'w': w,
            'h': h,
            't': lambda: '0.05',
            'T': lambda: '0.05',  # attention threshold
            'DIR': lambda: str(ws.fresh()),
            'work_dirs/infer': lambda: str(ws.fresh()),
            'ANN.json': lambda: str(COCO / 'test_coco.json'),
            'IMAGES/': lambda: f'{COCO}/',
            'keypoints.json': lambda: str(ws.keypoint_file()),
            'K': lambda: '17',
            'dets.json': lambda: str(COCO / 'test_coco_det_AP_H_56.json'),
            'coco.json': lambda: str(COCO / 'test_coco.json'),
        })


def substituted(tokens: List[str], ws: Workspace) -> Run:
    """run_tool's arguments and environment for one written variant."""
    words = [t for t in tokens if not ASSIGNMENT.match(t)]
    if words[0] in ('python', 'python3'):
        words = words[1:]
    tool, args = words[0], words[1:]
    table = placeholders(ws)
    args = [table[arg]() if arg in table else arg for arg in args]
    run, env = TOOLS[tool](args, ws)
    if tool.endswith('.sh'):
        return run, env
    return [tool] + run, env


def planned(
) -> Tuple[Dict[str, List[Tuple[str, List[str]]]], List[DocCommand]]:
    """The written variants to run, grouped by tool (each once, with where
    it is first written), and the commands neither run nor excluded."""
    runs: Dict[str, List[Tuple[str, List[str]]]] = {}
    seen, uncovered = set(), []
    for command in document_commands():
        if command.text in EXCLUDED:
            continue
        if command.tool not in TOOLS:
            uncovered.append(command)
            continue
        for variant in variants(command.tokens):
            if ' '.join(variant) not in seen:
                seen.add(' '.join(variant))
                runs.setdefault(command.tool, []).append(
                    (command.where, variant))
    return runs, uncovered


COMMAND_TIMEOUT = 600
# Commands run at the same time: each tool uses one thread (tool_env), so
# two keep a 2-core machine busy.
# Two at a time on a 2-core machine; fewer under pytest-xdist, whose other
# workers use the cores too.
PARALLEL = max(1, (os.cpu_count() or 1) //
               int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', 1)))
RUNS, UNCOVERED = planned()


def test_every_command_is_run_or_excluded():
    assert not UNCOVERED, (
        'commands in the documents that are neither run (add their tool to '
        'TOOLS) nor excluded (EXCLUDED, with the reason):\n' +
        '\n'.join(f'{c.where}: {c.text}' for c in UNCOVERED))


def test_extraction_reads_commands_and_skips_output():
    markdown = '\n'.join([
        '```bash',
        'python tools/new_tool.py CONFIG \\',
        '    --flag  # a comment',
        '```',
        '```',
        'error: printed output',
        'python tools/train.py CONFIG',
        '```',
        'Text:',
        '',
        '    ./dist_train.sh CONFIG 2',
        '```python',
        'import sspose_mm',
        '```',
    ])
    found = commands_in(markdown, 'x.md')
    assert [(c.where, c.text, c.tool) for c in found] == [
        ('x.md:2', 'python tools/new_tool.py CONFIG --flag',
         'tools/new_tool.py'),
        ('x.md:7', 'python tools/train.py CONFIG', 'tools/train.py'),
        ('x.md:11', './dist_train.sh CONFIG 2', './dist_train.sh'),
    ]
    # A new tool is neither run nor excluded, which the test above reports.
    assert 'tools/new_tool.py' not in TOOLS
    assert variants('a [--x 1 | --y [--z 2]] --m p|q ...'.split()) == [
        ['a', '--x', '1', '--m', 'p'], ['a', '--x', '1', '--m', 'q'],
        ['a', '--y', '--z', '2', '--m', 'p'],
        ['a', '--y', '--z', '2', '--m', 'q']
    ]


def test_exclusions_are_still_in_the_documents():
    written = {command.text for command in document_commands()}
    assert not set(EXCLUDED) - written


# mmengine's distributed evaluation on CPU leaves this (empty) folder in the
# current directory whatever the work dir: a distributed test run by another
# pytest worker at the same time creates it (.gitignore lists it).
MMENGINE_SCRATCH = {'.dist_test'}


def repository_outputs() -> set:
    """Where tools write by default: what a command with a missed output
    substitution would leave in the repository."""
    folders = [REPO / name for name in ('work_dirs', 'checkpoints', 'data')]
    return {
        str(path)
        for folder in folders if folder.exists() for path in folder.rglob('*')
    } | {
        path.name
        for path in REPO.iterdir() if path.name not in MMENGINE_SCRATCH
    }


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    return Workspace(tmp_path_factory.mktemp('docs'))


def run_each(runs: List[Tuple[str, Run]], ws: Workspace) -> List[str]:
    """Run every command, ``PARALLEL`` at a time; the failures. The output
    folders of a command that passed are deleted (no other command reads
    them; kept, the module's checkpoints and pictures took 8 GB)."""
    output = re.compile(re.escape(str(ws.root)) + r'/(?:out|work)\d+')

    def run(item):
        where, (args, env) = item
        result = run_tool(args, timeout=COMMAND_TIMEOUT, env=env)
        if result.returncode != 0:
            return (f'{where}\nran: {" ".join(args)}\n'
                    f'{result.stderr[-2000:]}')
        for folder in {
                m.group()
                for arg in args
                for m in output.finditer(arg)
        }:
            shutil.rmtree(folder, ignore_errors=True)

    with ThreadPoolExecutor(PARALLEL) as pool:
        return [f for f in pool.map(run, runs) if f]


@pytest.mark.slow
@pytest.mark.parametrize('tool', sorted(RUNS))
def test_documented_commands_run(tool, workspace):
    """Each written variant of the tool's commands exits 0 with tiny
    settings and writes nothing into the repository. Variants that are the
    same once substituted (e.g. CHECKPOINT and a checkpoint file name of
    the same config) run once."""
    before = repository_outputs()
    runs, seen = [], set()
    for where, tokens in RUNS[tool]:
        args, env = substituted(tokens, workspace)
        # Fresh output folders differ from run to run; nothing else may.
        same = re.sub(r'/(out|work)\d+\b', '/', ' '.join(args))
        if same not in seen:
            seen.add(same)
            runs.append((f'{where}: {" ".join(tokens)}', (args, env)))
    failed = run_each(runs, workspace)
    assert not failed, '\n\n'.join(failed)
    assert repository_outputs() == before


# --- the Makefile's two commands, with a stand-in .venv --------------------

MAKE_INPUTS = [
    'Makefile', 'setup.py', 'requirements/base.txt',
    'requirements/openmmlab.txt', 'requirements/tests.txt',
    'requirements/deploy.txt'
]
# Stands in for .venv/bin/python and pip: records its name, the time, the
# quickstart's start and its arguments.
RECORDER = ('#!/bin/sh\necho "$(basename "$0") $(date +%s) '
            '${QUICKSTART_START:--} $*" >> "{log}"\n')


@pytest.fixture
def make_copy(tmp_path):
    """The Makefile and what it depends on, in a folder of their own, with
    a .venv whose python and pip only record their calls."""
    for name in MAKE_INPUTS:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        shutil.copy(REPO / name, tmp_path / name)
    log = tmp_path / 'calls.log'
    (tmp_path / '.venv/bin').mkdir(parents=True)
    for program in ('python', 'pip'):
        path = tmp_path / '.venv/bin' / program
        path.write_text(RECORDER.replace('{log}', str(log)))
        path.chmod(0o755)
    return tmp_path, log


def run_make(folder: Path, *args: str) -> subprocess.CompletedProcess:
    # Not make's own variables of a make that may be running pytest.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ('MAKEFLAGS', 'MFLAGS', 'MAKELEVEL')
    }
    command = [
        'make', '--no-print-directory', '-C',
        str(folder), f'PYTHON={folder}/.venv/bin/python', *args
    ]
    with started(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True) as process:
        stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(command, process.returncode, stdout,
                                       stderr)


def snapshot(folder: Path) -> dict:
    return {
        str(p.relative_to(folder)): p.stat().st_mtime_ns
        for p in folder.rglob('*')
    }


@pytest.mark.slow
def test_make_quickstart_dry_run_prints_and_runs_nothing(make_copy):
    """GNU make runs a recipe line holding $(MAKE) even under -n: the
    quickstart recipe once did, and trained."""
    folder, log = make_copy
    before = snapshot(folder)
    result = run_make(folder, '-n', 'quickstart')
    assert result.returncode == 0, result.stderr
    assert 'pip install' in result.stdout
    assert '.venv/bin/python tools/quickstart.py' in result.stdout
    assert not log.exists(), log.read_text()
    assert snapshot(folder) == before


@pytest.mark.slow
def test_make_quickstart_and_test_run_the_venv_python(make_copy):
    """As the README says: set up .venv (here: the stand-in's pip), then
    the quickstart, timed from before the set-up; make test then runs
    pytest without installing again."""
    folder, log = make_copy
    result = run_make(folder, 'quickstart')
    assert result.returncode == 0, result.stderr
    calls = [line.split(maxsplit=3) for line in log.read_text().splitlines()]
    assert [c[0] for c in calls] == ['pip'] * 3 + ['python']
    assert calls[-1][3] == 'tools/quickstart.py'
    assert int(calls[-1][2]) <= int(calls[0][1])  # started before pip

    log.unlink()
    assert run_make(folder, 'test').returncode == 0
    # The style check (flake8, isort, yapf), then pytest.
    assert [line.split()[3:5]
            for line in log.read_text().splitlines()] == [['-m', 'flake8'],
                                                          ['-m', 'isort'],
                                                          ['-m', 'yapf'],
                                                          ['-m', 'pytest']]
    assert log.read_text().splitlines()[-1].split()[3:] == [
        '-m', 'pytest', 'tests'
    ]
