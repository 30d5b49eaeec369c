"""Bad input stops with one clear sentence naming what and where."""
import builtins
import os
import shutil

import pytest
import torch
from mmengine.config import Config

from conftest import (QUICKSTART_CONFIG, SHARED_COCO, as_cli,
                      coco_excerpt_options, run_tool)
from sspose_mm.apis import check_cfg_options, load_config
from sspose_mm.compat import load_from_local
from sspose_mm.errors import CheckpointError, ConfigError

CONFIG = str(QUICKSTART_CONFIG)


def excerpt(**overrides) -> dict:
    return dict(coco_excerpt_options(), **overrides)


def test_missing_data_root_names_it_and_where_to_get_coco(tmp_path):
    missing = str(tmp_path / 'nowhere')
    with pytest.raises(ConfigError) as error:
        load_config(CONFIG, excerpt(**{
            'train_dataloader.dataset.data_root': missing}), phases=['train'])
    message = str(error.value)
    assert missing in message and 'train_dataloader.dataset' in message
    assert 'cocodataset.org' in message


@pytest.mark.parametrize('key,value,fragment', [
    ('train_dataloader.dataset.ann_file', 'missing.json', 'annotation file'),
    ('val_dataloader.dataset.bbox_file', '/no/dets.json', 'detection file'),
    ('val_dataloader.dataset.data_prefix.img', 'no_images/', 'image folder'),
    ('val_evaluator.ann_file', '/no/ann.json', 'val_evaluator.ann_file'),
])
def test_missing_dataset_files(key, value, fragment):
    with pytest.raises(ConfigError, match=fragment) as error:
        load_config(CONFIG, excerpt(**{key: value}), phases=['train', 'val'])
    assert os.path.basename(value.rstrip('/')) in str(error.value)


def test_keypoint_count_mismatch():
    with pytest.raises(ConfigError, match='17 keypoints but the model '
                       'predicts 16'):
        load_config(CONFIG, excerpt(**{'model.head.out_channels': 16}),
                    phases=['train'])


def test_cfg_option_typo_is_caught_with_a_suggestion():
    cfg = Config.fromfile(CONFIG)
    with pytest.raises(ConfigError, match='did you mean "train_cfg.max_epochs"'):
        check_cfg_options(cfg, {'train_cfg.max_epoch': 3})
    # New keys without a near miss are allowed (e.g. a constructor argument).
    check_cfg_options(cfg, {'model.neck.init_cfg': None})
    check_cfg_options(cfg, {'train_dataloader.dataset.pipeline.0.type': 'X'})
    with pytest.raises(ConfigError, match='out of range'):
        check_cfg_options(cfg, {'train_dataloader.dataset.pipeline.99.a': 1})


def last_line_error(result):
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert 'Traceback' not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith('error: ')
    return line


def test_unknown_constructor_key_through_the_cli(tmp_path):
    result = run_tool(['tools/train.py', CONFIG, '--work-dir', str(tmp_path)]
                      + as_cli(excerpt(**{'model.head.colour': 1})))
    line = last_line_error(result)
    assert '"colour"' in line and 'HeatmapHead' in line


def test_missing_coco_through_the_cli(tmp_path):
    """The full recipe without data/coco: one line that says what to get."""
    config = 'configs/transpose/td-hm_transpose-r-a4_1xb20-230e_coco-256x192.py'
    result = run_tool(['tools/train.py', config, '--work-dir', str(tmp_path),
                       '--cfg-options', f'train_dataloader.dataset.data_root='
                       f'{tmp_path / "coco"}'])
    line = last_line_error(result)
    assert 'coco' in line and 'does not exist' in line


@pytest.mark.parametrize('num_workers', [0, 1])
def test_undecodable_image_names_the_file(tmp_path, num_workers):
    data = tmp_path / 'coco'
    shutil.copytree(SHARED_COCO, data)
    broken = data / '000000196141.jpg'
    broken.write_bytes(b'not a jpeg at all')
    options = excerpt()
    options = {k: (str(data) if v == str(SHARED_COCO) else v)
               for k, v in options.items()}
    options['val_evaluator.ann_file'] = str(data / 'test_coco.json')
    options['test_evaluator.ann_file'] = str(data / 'test_coco.json')
    options['test_dataloader.num_workers'] = num_workers
    result = run_tool(['tools/test.py', CONFIG, 'none', '--work-dir',
                       str(tmp_path / 'work')] + as_cli(options))
    line = last_line_error(result)
    assert str(broken) in line and 'could not be read or decoded' in line


class _CodeRunningPayload:
    """Unpickling this would create ``path``: proof that code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (builtins.open, (str(self.path), 'w'))


def test_checkpoint_with_pickled_code_is_refused(tmp_path):
    marker = tmp_path / 'code_ran'
    evil = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'payload': _CodeRunningPayload(marker)},
               evil)
    with pytest.raises(CheckpointError, match='Refused to load'):
        load_from_local(str(evil))
    result = run_tool(['tools/test.py', CONFIG, str(evil), '--work-dir',
                       str(tmp_path / 'work')] + as_cli(excerpt()))
    assert 'Refused to load' in last_line_error(result)
    assert not marker.exists()


def test_missing_checkpoint_and_config(tmp_path):
    result = run_tool(['tools/test.py', CONFIG, str(tmp_path / 'x.pth')] +
                      as_cli(excerpt()))
    assert 'does not exist' in last_line_error(result)
    result = run_tool(['tools/train.py', str(tmp_path / 'no_config.py')])
    assert 'config file' in last_line_error(result)


def test_dist_scripts_print_usage_without_arguments():
    for script in ('./dist_train.sh', './dist_test.sh'):
        result = run_tool([script])
        assert result.returncode == 2 and 'usage:' in result.stderr
