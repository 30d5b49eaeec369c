"""The layers of docs/architecture.md, and what ``import sspose_mm`` does."""
import ast
import json

import pytest

from conftest import REPO, run_tool

PACKAGE = REPO / 'sspose_mm'
# Bottom layers: registered modules and the utilities they use.
BOTTOM = ('models', 'codecs', 'datasets', 'engine', 'compat', 'errors',
          'fileio', 'env', 'utils', 'version')
# What may be imported by whom, beyond the bottom layers: the public API
# does not use the command-line plumbing; the plumbing may use the API.
ABOVE = {
    'apis': ('benchmarks', 'cli', 'synthetic'),
    'benchmarks': ('cli', ),
    'synthetic': ('apis', 'cli', 'benchmarks'),
    'cli': ('benchmarks', 'synthetic')
}


def imported_package_modules(source: str, module: tuple) -> set:
    """The ``sspose_mm`` modules that ``source``, the text of ``module``
    (('sspose_mm', 'engine', 'hooks', 'x')), imports, absolutely or
    relatively, as first components below the package: {'apis', ...}."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(module[:len(module) - node.level])
                parts = base + (node.module.split('.') if node.module else [])
                names = ([parts] if node.module else
                         [parts + [alias.name] for alias in node.names])
            else:
                names = [(node.module or '').split('.')]
        elif isinstance(node, ast.Import):
            names = [alias.name.split('.') for alias in node.names]
        else:
            continue
        found |= {
            parts[1]
            for parts in names if len(parts) > 1 and parts[0] == 'sspose_mm'
        }
    return found


@pytest.mark.parametrize(
    'path',
    sorted(PACKAGE.rglob('*.py')),
    ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_upward_import(path):
    module = path.relative_to(REPO).with_suffix('').parts
    layer = module[1]
    imported = imported_package_modules(path.read_text(), module) - {layer}
    if layer in BOTTOM:
        assert imported <= set(BOTTOM), imported - set(BOTTOM)
    else:
        forbidden = set(ABOVE.get(layer, ())) & imported
        assert not forbidden, forbidden


def test_the_layer_check_sees_relative_and_absolute_imports():
    """The scanner must not pass by finding nothing."""
    source = ('from ...apis import init_model\n'
              'import sspose_mm.cli.launch\n'
              'from ... import benchmarks\n'
              'from ..hooks import x\n'
              'import torch\n')
    module = ('sspose_mm', 'engine', 'hooks', 'probe')
    assert imported_package_modules(
        source, module) == {'apis', 'cli', 'benchmarks', 'engine'}


# What importing the package adds to what registering MMPose's own modules
# and importing timm (whose layers the models use; it brings
# huggingface_hub and its tqdm) import: the package's registered modules,
# and none of its API, the tools' plumbing, the benchmarks or the
# synthetic renderer. (pyplot comes with MMPose: xtcocotools imports it.)
PROBE = '''
import importlib.util, json, sys
# sspose_mm/compat.py alone (importing sspose_mm.compat runs the package).
spec = importlib.util.spec_from_file_location('compat', 'sspose_mm/compat.py')
spec.loader.exec_module(importlib.util.module_from_spec(spec))
from mmpose.utils import register_all_modules
register_all_modules()
import timm
before = set(sys.modules)
import sspose_mm
print(json.dumps(sorted(set(sys.modules) - before)))
'''


@pytest.mark.slow
def test_import_registers_modules_and_little_else():
    result = run_tool(['-c', PROBE], timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    added = json.loads(result.stdout.strip().splitlines()[-1])
    assert not [m for m in added if m.split('.')[0] != 'sspose_mm'], added
    layers = {m.split('.')[1] for m in added if m.count('.')}
    assert layers <= set(BOTTOM), layers - set(BOTTOM)
    assert 'sspose_mm.models.backbones.sharpose_vit' in added


@pytest.mark.parametrize(
    'path',
    sorted(p for layer in BOTTOM for p in (PACKAGE / layer).rglob('*.py')) + [
        PACKAGE / f'{name}.py'
        for name in BOTTOM if (PACKAGE / f'{name}.py').exists()
    ],
    ids=lambda p: str(p.relative_to(PACKAGE)))
def test_bottom_layers_import_no_progress_bar_or_plotting(path):
    """At module level; a function may import what it needs when run."""
    tree = ast.parse(path.read_text())
    names = [
        alias.name for node in tree.body
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in (node.names if isinstance(node, ast.Import) else
                      [ast.alias(node.module or '')])
    ]
    assert not [n for n in names if n.split('.')[0] in ('tqdm', 'matplotlib')]
