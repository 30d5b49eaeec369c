"""The bottom layers never import the public API, the benchmarks or the
tools (issue 16: engine/hooks/keypoint_transfer_hook.py imported apis)."""
import ast

import pytest

from conftest import REPO

BOTTOM = ('models', 'codecs', 'datasets', 'engine', 'utils')
ABOVE = ('sspose_mm.apis', 'sspose_mm.benchmarks', 'tools')


def imported_modules(path) -> list:
    """Absolute names of the modules a file imports (relative ones
    resolved against its package)."""
    package = path.relative_to(REPO).parent.parts
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level \
                else ()
            module = '.'.join(base + ((node.module, ) if node.module else ()))
            names += [module] + [f'{module}.{alias.name}'
                                 for alias in node.names]
    return names


@pytest.mark.parametrize('layer', BOTTOM)
def test_no_upward_import(layer):
    files = sorted((REPO / 'sspose_mm' / layer).rglob('*.py'))
    assert files
    upward = [f'{path.relative_to(REPO)}: {name}' for path in files
              for name in imported_modules(path)
              if any(name == above or name.startswith(above + '.')
                     for above in ABOVE)]
    assert not upward
