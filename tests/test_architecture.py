"""The layers of docs/architecture.md, and what ``import sspose_mm`` does."""
import ast
import json
import re

import pytest

from conftest import REPO, run_tool

PACKAGE = REPO / 'sspose_mm'
ARCHITECTURE = REPO / 'docs' / 'architecture.md'
REGISTERED = ('models', 'codecs', 'datasets', 'engine')
UTILITIES = ('compat', 'errors', 'fileio', 'env', 'utils', 'version')
# Bottom layers: registered modules and the utilities they use.
BOTTOM = REGISTERED + UTILITIES
# What each layer may import besides itself: the table of
# docs/architecture.md (test_the_documented_table_states_these_rules).
# The utilities use only each other; the public API does not use the
# command-line plumbing, the benchmarks or the renderer; the plumbing may
# use the API.
MAY_IMPORT = {
    **{
        layer: BOTTOM
        for layer in REGISTERED
    },
    **{
        layer: UTILITIES
        for layer in UTILITIES
    },
    '__init__': BOTTOM,
    'apis': BOTTOM,
    'cli': BOTTOM + ('apis', ),
    'benchmarks': BOTTOM + ('apis', 'synthetic'),
    'synthetic': UTILITIES,
}
# Functions that import the module their first argument names.
STRING_IMPORTS = ('import_module', '__import__')


def imported_package_modules(source: str, module: tuple) -> set:
    """The ``sspose_mm`` modules that ``source``, the text of ``module``
    (('sspose_mm', 'engine', 'hooks', 'x')), imports, absolutely or
    relatively, by statement or by name (``importlib.import_module``,
    ``__import__``; a leading dot is taken relative to the module's
    package), as first components below the package: {'apis', ...}."""
    package = list(module[:-1])
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            parts = list(module[:len(module) -
                                node.level]) if (node.level) else []
            parts += node.module.split('.') if node.module else []
            # `from sspose_mm import apis`, `from ... import benchmarks`:
            # the imported names are the modules.
            names = ([parts + [alias.name]
                      for alias in node.names] if len(parts) == 1 else [parts])
        elif isinstance(node, ast.Import):
            names = [alias.name.split('.') for alias in node.names]
        elif (isinstance(node, ast.Call) and node.args
              and getattr(node.func, 'id', getattr(node.func, 'attr', None))
              in STRING_IMPORTS and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            name = node.args[0].value
            dots = len(name) - len(name.lstrip('.'))
            names = [(package[:len(package) - dots + 1] if dots else []) +
                     name.lstrip('.').split('.')]
        else:
            continue
        found |= {
            parts[1]
            for parts in names if len(parts) > 1 and parts[0] == 'sspose_mm'
        }
    return found


def forbidden_imports(layer: str, imported: set) -> set:
    """What ``layer`` imports but may not (:data:`MAY_IMPORT`)."""
    return imported - {layer} - set(MAY_IMPORT[layer])


@pytest.mark.parametrize(
    'path',
    sorted(PACKAGE.rglob('*.py')),
    ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_upward_import(path):
    module = path.relative_to(REPO).with_suffix('').parts
    imported = imported_package_modules(path.read_text(), module)
    assert not forbidden_imports(module[1], imported)


def test_the_layer_check_sees_relative_absolute_and_string_imports():
    """The scanner must not pass by finding nothing."""
    source = ('from ...apis import init_model\n'
              'import sspose_mm.cli.launch\n'
              'from ... import benchmarks\n'
              'from ..hooks import x\n'
              'from sspose_mm import synthetic\n'
              'import torch\n'
              'importlib.import_module("sspose_mm.env")\n'
              'import_module("...fileio")\n'
              '__import__("sspose_mm.version")\n'
              'importlib.import_module("torch.nn")\n')
    module = ('sspose_mm', 'engine', 'hooks', 'probe')
    assert imported_package_modules(source, module) == {
        'apis', 'cli', 'benchmarks', 'engine', 'synthetic', 'env', 'fileio',
        'version'
    }


def test_the_layer_rules_keep_utilities_below_registered_modules():
    assert forbidden_imports('env', {'env', 'errors', 'models'}) == {'models'}
    assert forbidden_imports('utils', {'engine', 'apis'}) == {'engine', 'apis'}
    assert forbidden_imports('models', {'engine', 'utils'}) == set()
    assert forbidden_imports('__init__', {'models', 'apis'}) == {'apis'}


def _layer_names(cell: str) -> set:
    """`models/`, `synthetic.py`, `__init__.py` in a table cell: {'models',
    'synthetic', '__init__'}."""
    return {
        re.sub(r'(/|\.py)$', '', name)
        for name in re.findall(r'`([\w./]+)`', cell)
    }


def test_the_documented_table_states_these_rules():
    """docs/architecture.md's table names every layer of the package once
    and, in "may import", exactly :data:`MAY_IMPORT` ("each other": the
    row's own layers; "the utilities", "the registered modules": those
    rows)."""
    rows = [
        line.split('|')[1:4] for line in ARCHITECTURE.read_text().splitlines()
        if line.startswith('| `')
    ]
    documented = {}
    for layers, _, may_import in rows:
        layers = _layer_names(layers) - {'tools'}
        allowed = _layer_names(may_import)
        allowed |= layers if 'each other' in may_import else set()
        allowed |= set(UTILITIES) if 'the utilities' in may_import else set()
        allowed |= set(REGISTERED) if 'registered modules' in may_import else (
            set())
        documented.update({layer: allowed - {layer} for layer in layers})
    package = {
        path.stem if path.is_file() else path.name
        for path in PACKAGE.iterdir()
        if path.suffix == '.py' or (path / '__init__.py').is_file()
    }
    assert set(documented) == set(MAY_IMPORT) == package
    assert documented == {
        layer: set(allowed) - {layer}
        for layer, allowed in MAY_IMPORT.items()
    }


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
