"""model-index.yml and the families' metafile.yml (MMPose/mim's model-index
format) list every config, and every config they list exists and loads."""
from pathlib import Path

import pytest
import yaml
from mmengine.config import Config

from conftest import REPO

INDEX = yaml.safe_load((REPO / 'model-index.yml').read_text())
METAFILES = {
    path: yaml.safe_load((REPO / path).read_text())
    for path in INDEX['Import']
}
LISTED = [(path, model) for path, meta in METAFILES.items()
          for model in meta['Models']]
EVERY_CONFIG = sorted(
    str(p.relative_to(REPO)) for p in (REPO / 'configs').rglob('*.py')
    if '_base_' not in p.parts)


def test_every_family_has_an_imported_metafile():
    families = sorted(
        p.parent.name for p in (REPO / 'configs').glob('*/*.py')
        if p.parent.name != '_base_')
    assert sorted(INDEX['Import']) == sorted(f'configs/{family}/metafile.yml'
                                             for family in set(families))


def test_every_config_is_listed_once():
    assert sorted(model['Config'] for _, model in LISTED) == EVERY_CONFIG


@pytest.mark.parametrize(
    'path,model', LISTED, ids=[model['Name'] for _, model in LISTED])
def test_listed_config_exists_and_loads(path: str, model: dict):
    config = REPO / model['Config']
    assert config.is_file()
    assert model['Name'] == config.stem
    assert Path(path).parent == Path(model['Config']).parent
    collections = {c['Name']: c for c in METAFILES[path]['Collections']}
    collection = collections[model['In Collection']]
    assert (REPO / collection['README']).is_file()
    assert model['Metadata']['Training Data']
    for result in model.get('Results', []):
        assert result['Dataset'] and result['Metrics']
        # Metrics are fractions, as in MMPose's metafiles.
        assert all(0 < v <= 1 for v in result['Metrics'].values())
    Config.fromfile(config)
