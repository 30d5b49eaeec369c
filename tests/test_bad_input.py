"""Bad input stops with one clear sentence naming what and where; bad
training samples are skipped with a counted warning."""
import builtins
import json
import os
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmpose.registry import DATASETS, MODELS, TRANSFORMS

from sspose_mm.apis.loading import check_checkpoint_fits
from sspose_mm.cli import check_cfg_options, load_config
from sspose_mm.cli.report import explain
from sspose_mm.engine.hooks import NanGuardHook
from sspose_mm.errors import (CheckpointError, ConfigError, DataError,
                              TrainingDiverged)
from sspose_mm.fileio import load_from_local
from conftest import (COCO, QUICKSTART_CONFIG, as_cli, coco_excerpt_options,
                      run_tool)

CONFIG = str(QUICKSTART_CONFIG)


def excerpt(**overrides) -> dict:
    return dict(coco_excerpt_options(), **overrides)


def test_missing_data_root_names_it_and_where_to_get_coco(tmp_path):
    missing = str(tmp_path / 'nowhere')
    with pytest.raises(ConfigError) as error:
        load_config(
            CONFIG,
            excerpt(**{'train_dataloader.dataset.data_root': missing}),
            phases=['train'])
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
    with pytest.raises(
            ConfigError, match='17 keypoints but the model '
            'predicts 16'):
        load_config(
            CONFIG,
            excerpt(**{'model.head.out_channels': 16}),
            phases=['train'])


def test_cfg_option_typo_is_caught_with_a_suggestion():
    cfg = Config.fromfile(CONFIG)
    with pytest.raises(
            ConfigError, match='did you mean "train_cfg.max_epochs"'):
        check_cfg_options(cfg, {'train_cfg.max_epoch': 3})
    # New keys without a near miss are allowed (e.g. a constructor argument).
    check_cfg_options(cfg, {'model.neck.init_cfg': None})
    check_cfg_options(cfg, {'train_dataloader.dataset.pipeline.0.type': 'X'})
    with pytest.raises(ConfigError, match='out of range'):
        check_cfg_options(cfg, {'train_dataloader.dataset.pipeline.99.a': 1})


def last_line_error(result):
    assert result.returncode == 2, (
        result.stdout[-2000:] + result.stderr[-2000:])
    assert 'Traceback' not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith('error: ')
    return line


@pytest.mark.slow
def test_unknown_constructor_key_through_the_cli(tmp_path):
    result = run_tool(['tools/train.py', CONFIG, '--work-dir',
                       str(tmp_path)] +
                      as_cli(excerpt(**{'model.head.colour': 1})))
    line = last_line_error(result)
    assert '"colour"' in line and 'HeatmapHead' in line


@pytest.mark.slow
def test_missing_coco_through_the_cli(tmp_path):
    """The full recipe without data/coco: one line that says what to get."""
    config = ('configs/transpose/'
              'td-hm_transpose-r-a4_1xb20-230e_coco-256x192.py')
    result = run_tool([
        'tools/train.py', config, '--work-dir',
        str(tmp_path), '--cfg-options', f'train_dataloader.dataset.data_root='
        f'{tmp_path / "coco"}'
    ])
    line = last_line_error(result)
    assert 'coco' in line and 'does not exist' in line


@pytest.mark.slow
@pytest.mark.parametrize('num_workers', [0, 1])
def test_undecodable_image_names_the_file(tmp_path, num_workers):
    data = tmp_path / 'coco'
    shutil.copytree(COCO, data)
    broken = data / '000000196141.jpg'
    broken.write_bytes(b'not a jpeg at all')
    options = excerpt()
    options = {
        k: (str(data) if v == str(COCO) else v)
        for k, v in options.items()
    }
    options['val_evaluator.ann_file'] = str(data / 'test_coco.json')
    options['test_evaluator.ann_file'] = str(data / 'test_coco.json')
    options['test_dataloader.num_workers'] = num_workers
    result = run_tool([
        'tools/test.py', CONFIG, 'none', '--work-dir',
        str(tmp_path / 'work')
    ] + as_cli(options))
    line = last_line_error(result)
    assert line == f'error: the image {broken} does not decode.'


class _CodeRunningPayload:
    """Unpickling this would create ``path``: proof that code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (builtins.open, (str(self.path), 'w'))


@pytest.mark.slow
def test_checkpoint_with_pickled_code_is_refused(tmp_path):
    marker = tmp_path / 'code_ran'
    evil = tmp_path / 'evil.pth'
    torch.save({
        'state_dict': {},
        'payload': _CodeRunningPayload(marker)
    }, evil)
    with pytest.raises(CheckpointError, match='Refused to load'):
        load_from_local(str(evil))
    result = run_tool([
        'tools/test.py', CONFIG,
        str(evil), '--work-dir',
        str(tmp_path / 'work')
    ] + as_cli(excerpt()))
    assert 'Refused to load' in last_line_error(result)
    assert not marker.exists()
    # Resuming reads the file with weights_only too, unless told otherwise:
    # the package's own checkpoints never need it (test_reliability_resume).
    result = run_tool([
        'tools/train.py', CONFIG, '--resume',
        str(evil), '--work-dir',
        str(tmp_path / 'work')
    ] + as_cli(excerpt()))
    assert 'add --trust-checkpoint to --resume' in last_line_error(result)
    assert not marker.exists()


@pytest.mark.slow
def test_weights_that_cannot_be_downloaded_are_named(tmp_path):
    """A config's ImageNet init (torchvision://, https://...) on a machine
    that cannot reach it; '.invalid' never resolves (RFC 6761)."""
    result = run_tool([
        'tools/test.py', 'configs/transpose/'
        'td-hm_transpose-r-a3_1xb28-230e_coco-256x192.py', 'none',
        '--work-dir',
        str(tmp_path)
    ] + as_cli(
        excerpt(
            **{
                'model.backbone.init_cfg.checkpoint':
                'https://weights.invalid/resnet50.pth'
            })))
    line = last_line_error(result)
    assert line.startswith('error: a download failed (')
    assert 'set that init_cfg.checkpoint to its local path' in line


@pytest.mark.slow
def test_missing_checkpoint_and_config(tmp_path):
    result = run_tool(['tools/test.py', CONFIG,
                       str(tmp_path / 'x.pth')] + as_cli(excerpt()))
    assert 'does not exist' in last_line_error(result)
    result = run_tool(['tools/train.py', str(tmp_path / 'no_config.py')])
    assert 'config file' in last_line_error(result)


@pytest.mark.slow
def test_dist_scripts_print_usage_without_arguments():
    for script in ('./dist_train.sh', './dist_test.sh'):
        result = run_tool([script])
        assert result.returncode == 2 and 'usage:' in result.stderr


# The catalogue of docs/reliability.md, one test per entry from here on.


def coco_copy(folder: Path) -> Path:
    """A writable copy of the COCO excerpt."""
    data = folder / 'coco'
    shutil.copytree(COCO, data)
    return data


def options_for(data: Path, **overrides) -> dict:
    options = {
        k: (str(data) if v == str(COCO) else v)
        for k, v in excerpt().items()
    }
    for evaluator in ('val_evaluator', 'test_evaluator'):
        options[f'{evaluator}.ann_file'] = str(data / 'test_coco.json')
    return dict(options, **overrides)


def edit_annotations(data: Path, edit) -> None:
    path = data / 'test_coco.json'
    content = json.loads(path.read_text())
    edit(content)
    path.write_text(json.dumps(content))


@pytest.fixture(scope='module')
def training_on_bad_images(tmp_path_factory):
    """One epoch on a copy of the excerpt whose four images are: missing,
    a truncated JPEG, grayscale, and a 16-bit PNG."""
    folder = tmp_path_factory.mktemp('bad_images')
    data = coco_copy(folder)
    images = sorted(data.glob('*.jpg'))
    missing, truncated, gray, deep = images
    missing.unlink()
    truncated.write_bytes(truncated.read_bytes()[:20000])
    cv2.imwrite(str(gray), cv2.imread(str(gray), cv2.IMREAD_GRAYSCALE))
    png = deep.with_suffix('.png')
    cv2.imwrite(str(png), cv2.imread(str(deep)).astype(np.uint16) * 257)
    deep.unlink()
    edit_annotations(
        data, lambda c: [
            image.update(file_name=png.name) for image in c['images']
            if image['file_name'] == deep.name
        ])
    result = run_tool([
        'tools/train.py', CONFIG, '--work-dir',
        str(folder / 'work'), '--no-validate'
    ] + as_cli(options_for(data, **{'train_cfg.max_epochs': 1})))
    return result, dict(
        missing=missing, truncated=truncated, gray=gray, png=png)


@pytest.mark.slow
def test_missing_image_is_skipped_with_a_counted_warning(
        training_on_bad_images):
    result, images = training_on_bad_images
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert f'skipped a sample: the image {images["missing"]} cannot be read'\
        in log
    assert re.search(r'\((\d+) skipped so far by this process\)', log)


@pytest.mark.slow
def test_truncated_jpeg_is_skipped_with_a_counted_warning(
        training_on_bad_images):
    result, images = training_on_bad_images
    log = result.stdout + result.stderr
    assert (f'skipped a sample: the image {images["truncated"]} is a '
            'truncated JPEG (no end-of-image marker)') in log
    counts = [int(n) for n in re.findall(r'\((\d+) skipped so far', log)]
    assert counts == list(range(1, len(counts) + 1))  # counted, not repeated


@pytest.mark.slow
def test_grayscale_and_16_bit_images_are_used(training_on_bad_images):
    result, images = training_on_bad_images
    log = result.stdout + result.stderr
    assert result.returncode == 0
    assert str(images['gray']) not in log and str(images['png']) not in log
    transform = TRANSFORMS.build(dict(type='LoadImageOrSkip'))
    for path in (images['gray'], images['png']):
        img = transform(dict(img_path=str(path)))['img']
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3


def build_dataset(data: Path, phase: str = 'train'):
    cfg = load_config(CONFIG, options_for(data), phases=[phase])
    return DATASETS.build(cfg[f'{phase}_dataloader'].dataset)


def test_people_without_keypoints_or_with_zero_area_boxes_are_left_out(
        tmp_path, logged_warnings):
    """MMPose's COCO filtering (also in the published training): a person
    with no labelled keypoint or a zero-area box is no training sample; the
    count is logged."""
    data = coco_copy(tmp_path)
    people = [
        a for a in json.loads((data /
                               'test_coco.json').read_text())['annotations']
        if a['num_keypoints'] > 0
    ]
    assert len(build_dataset(data)) == len(people) == 12

    def spoil(content):
        first, second = [
            a for a in content['annotations'] if a['num_keypoints'] > 0
        ][:2]
        first['keypoints'] = [0] * len(first['keypoints'])
        first['num_keypoints'] = 0
        second['bbox'][2] = 0

    edit_annotations(data, spoil)
    del logged_warnings[:]  # the first build's count
    dataset = build_dataset(data)
    assert len(dataset) == 10
    # 14 annotations, 2 without keypoints in the excerpt, 2 spoiled here.
    logged = [record.getMessage() for record in logged_warnings]
    assert any(
        message.startswith(
            'CocoDataset (test_coco.json): 4 of 14 annotated people left '
            'out (no labelled keypoint, or a zero-area box')
        for message in logged), logged
    for index in range(len(dataset)):
        assert dataset[index] is not None


def test_keypoints_outside_the_image_get_zero_weight(tmp_path):
    data = coco_copy(tmp_path)
    shifted = {}

    def move_out(content):
        person = next(a for a in content['annotations']
                      if a['num_keypoints'] > 0)
        image = next(i for i in content['images']
                     if i['id'] == person['image_id'])
        for k in range(0, len(person['keypoints']), 3):
            if person['keypoints'][k + 2] > 0:
                person['keypoints'][k] = image['width'] + 500.0
        shifted['id'] = person['id']

    edit_annotations(data, move_out)
    dataset = build_dataset(data)
    index = next(
        i for i in range(len(dataset))
        if dataset.get_data_info(i)['id'] == shifted['id'])
    sample = dataset[index]['data_samples']
    # The crop around the box cannot contain them: no target, no loss.
    assert float(sample.gt_instance_labels.keypoint_weights.sum()) == 0


def test_empty_annotation_file_stops_before_the_run(tmp_path):
    data = coco_copy(tmp_path)
    (data / 'test_coco.json').write_bytes(b'')
    with pytest.raises(DataError, match='is empty'):
        load_config(CONFIG, options_for(data), phases=['train'])


@pytest.mark.slow
def test_malformed_annotation_file_is_named(tmp_path):
    data = coco_copy(tmp_path)
    text = (data / 'test_coco.json').read_text()
    (data / 'test_coco.json').write_text(text[:len(text) // 2])
    result = run_tool([
        'tools/test.py', CONFIG, 'none', '--work-dir',
        str(tmp_path / 'work')
    ] + as_cli(options_for(data)))
    line = last_line_error(result)
    assert f'the annotation file {data / "test_coco.json"} is not valid ' \
        'JSON' in line


def test_detections_on_unknown_images_stop_before_the_run(tmp_path):
    data = coco_copy(tmp_path)
    detections = json.loads((COCO / 'test_coco_det_AP_H_56.json').read_text())
    for det in detections[:3]:
        det['image_id'] = 999999
    bbox_file = tmp_path / 'other_split_dets.json'
    bbox_file.write_text(json.dumps(detections))
    with pytest.raises(
            DataError,
            match=r'has 3 of its 118 boxes on 1 images '
            r'.* \(image ids \[999999\]\)'):
        load_config(
            CONFIG,
            options_for(
                data, **{'test_dataloader.dataset.bbox_file': str(bbox_file)}),
            phases=['test'])


def test_typo_in_a_module_type_suggests_the_registered_name():
    with pytest.raises(
            ConfigError,
            match=r'model.head.type: "HeatmapHaed" is '
            r'not a registered module type; did you mean '
            r'"HeatmapHead"\?'):
        load_config(CONFIG, excerpt(**{'model.head.type': 'HeatmapHaed'}))
    # Names too far from any registered one are left to the build, whose
    # error is explained with the closest name of the same registry.
    with pytest.raises(KeyError) as error:
        MODELS.build(
            dict(
                type='TopdownPoseEstimator',
                backbone=dict(type='ResNetXYZ', depth=50)))
    message = explain(error.value)
    assert message.startswith('unknown module type "ResNetXYZ" in the config '
                              '(no model of that name is registered)')
    assert 'did you mean "ResNet' in message


def test_truncated_checkpoint_says_so(tmp_path):
    path = tmp_path / 'epoch_9.pth'
    torch.save({'state_dict': {'w': torch.zeros(10000)}}, path)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(
            CheckpointError,
            match=r'epoch_9.pth \(5,000 bytes\) '
            'is truncated or corrupt'):
        load_from_local(str(path))


def test_checkpoint_of_another_model_lists_the_mismatched_keys(tmp_path):
    cfg = Config.fromfile(CONFIG)
    model = MODELS.build(cfg.model)
    state = model.state_dict()
    state['head.final_layer.weight'] = state['head.final_layer.weight'][:16]
    state['head.final_layer.bias'] = state['head.final_layer.bias'][:16]
    del state['neck.layers.2.norm2.weight']
    state['refine.weight'] = torch.zeros(3)
    path = tmp_path / 'other.pth'
    torch.save({'state_dict': state}, path)
    with pytest.raises(CheckpointError) as error:
        check_checkpoint_fits(model, str(path))
    message = str(error.value)
    assert 'does not fit the model of this config' in message
    assert 'not in it (neck.layers.2.norm2.weight)' in message
    assert 'not in the model (refine.weight)' in message
    assert '2 have another shape' in message
    assert ('head.final_layer.weight (16, 256, 1, 1) vs (17, 256, 1, 1)'
            in message)
    # The checkpoint of the model itself fits.
    torch.save({'state_dict': model.state_dict()}, path)
    check_checkpoint_fits(model, str(path))


@pytest.mark.slow
def test_nan_loss_stops_with_the_iteration_and_the_loss_terms(tmp_path):
    """A NaN loss weight makes the first loss NaN: the run stops there and
    saves nothing."""
    result = run_tool([
        'tools/train.py', CONFIG, '--work-dir',
        str(tmp_path), '--no-validate'
    ] + as_cli(excerpt(**{'model.head.loss.loss_weight': 'nan'})))
    line = last_line_error(result)
    assert line.startswith('error: the loss is not finite at iteration 1 '
                           '(epoch 1, batch 1) on this process: loss=nan, '
                           'loss_kpt=nan.')
    assert 'no checkpoint had been saved yet' in line
    assert not list(tmp_path.glob('*.pth'))


@pytest.mark.slow
def test_weights_overflowed_by_a_finite_loss_are_not_checkpointed(tmp_path):
    """SGD at lr 3e38 (no warmup) with gradients scaled up by a loss weight
    of 1e6: iteration 1's loss is finite, its update overflows float32
    (any gradient above 1.2 does). The checkpoint due after it is refused
    and nothing is written. (With an lr that leaves the weights finite but
    huge, the next loss is NaN, which the loss check catches.)"""
    result = run_tool([
        'tools/train.py', CONFIG, '--work-dir',
        str(tmp_path), '--no-validate'
    ] + as_cli(
        excerpt(
            **{
                'optim_wrapper.optimizer.type': 'SGD',
                'optim_wrapper.optimizer.lr': '3e38',
                'param_scheduler.0.start_factor': '1.0',
                'model.head.loss.loss_weight': '1e6',
                'default_hooks.checkpoint.by_epoch': 'False',
                'default_hooks.checkpoint.interval': '1'
            })))
    line = last_line_error(result)
    assert line.startswith(
        'error: the weights are not finite after '
        'iteration 1 (epoch 1) although the loss was: '), line
    assert 'no checkpoint had been saved yet' in line
    assert not list(tmp_path.glob('*.pth'))
    assert not (tmp_path / 'last_checkpoint').exists()


def test_nan_guard_names_the_last_good_checkpoint(tmp_path):
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_40.pth'))
    runner = SimpleNamespace(work_dir=str(tmp_path), iter=41, epoch=3)
    hook = NanGuardHook()
    hook.after_train_iter(
        runner,
        5,
        outputs={
            'loss': torch.tensor(0.5),
            'acc_pose': torch.tensor(0.1)
        })
    with pytest.raises(TrainingDiverged) as error:
        hook.after_train_iter(
            runner,
            5,
            outputs={
                'loss': torch.tensor(float('inf')),
                'loss_kpt': torch.tensor(float('inf')),
                'acc_pose': torch.tensor(0.1)
            })
    message = str(error.value)
    assert 'iteration 42 (epoch 4, batch 6)' in message
    assert 'loss=inf, loss_kpt=inf' in message and 'acc_pose' not in message
    assert f'the last good checkpoint is {tmp_path / "iter_40.pth"}' in message


@pytest.mark.parametrize('key,value,needs,built', [
    ('train_cfg.max_epochs', 'abc', 'is not a whole number',
     'max_epochs of ExactResumeEpochBasedTrainLoop takes an int'),
    ('train_cfg.max_epochs', 1.5, 'is not a whole number',
     'max_epochs of ExactResumeEpochBasedTrainLoop takes an int'),
    ('optim_wrapper.optimizer.lr', 'fast', 'is not a number',
     'lr of Adam takes a float'),
    ('model.head.out_channels', 17.0, 'is not a whole number',
     'out_channels of HeatmapHead takes an int'),
    ('test_dataloader.batch_size', '4x', 'is not a whole number',
     'batch_size of DataLoader takes an int'),
])
def test_a_value_of_the_wrong_kind_stops_before_the_build(
        key, value, needs, built):
    """--cfg-options keeps what does not parse as a number as a string
    (abc, fast) and 1.5 / 17.0 as floats; mmengine passes them on to fail
    deep in the build or training."""
    with pytest.raises(ConfigError) as error:
        load_config(CONFIG, excerpt(**{key: value}))
    assert str(error.value) == (
        f'{key}={value!r} (set by --cfg-options for {CONFIG}) {needs}: '
        f'{built}.')


def test_a_value_of_the_wrong_kind_in_the_config_file(tmp_path):
    config = tmp_path / 'epochs_as_text.py'
    config.write_text(f'_base_ = [{CONFIG!r}]\n'
                      "train_cfg = dict(max_epochs='12')\n")
    with pytest.raises(
            ConfigError,
            match=re.escape(
                f"train_cfg.max_epochs='12' (in {config}) is not a whole "
                'number')):
        load_config(str(config), excerpt())


@pytest.mark.slow
def test_a_value_of_the_wrong_kind_through_the_cli(tmp_path):
    """The line is all that is printed: nothing was built or dumped."""
    result = run_tool(['tools/train.py', CONFIG, '--work-dir',
                       str(tmp_path)] +
                      as_cli(excerpt(**{'train_cfg.max_epochs': 'abc'})))
    assert last_line_error(result) == (
        "error: train_cfg.max_epochs='abc' (set by --cfg-options for "
        f'{CONFIG}) is not a whole number: max_epochs of '
        'ExactResumeEpochBasedTrainLoop takes an int.')
    assert result.stdout == '' and len(result.stderr.splitlines()) == 1


def test_a_syntax_error_names_the_config_file_and_line(tmp_path):
    """mmengine parses configs without their name (File "<unknown>")."""
    base = tmp_path / 'base.py'
    base.write_text(f'_base_ = [{CONFIG!r}]\n'
                    'model = dict(head=dict(out_channels=17)\n'
                    'train_cfg = dict(max_epochs=3)\n')
    child = tmp_path / 'child.py'
    child.write_text("_base_ = ['base.py']\n")
    with pytest.raises(ConfigError) as error:
        load_config(str(child), excerpt())
    assert str(error.value) == (
        f'syntax error in the config file {base}, line 2: \'(\' was never '
        'closed (model = dict(head=dict(out_channels=17)); it is a _base_ '
        f'of {child}.')
    with pytest.raises(
            ConfigError,
            match=re.escape(
                f'syntax error in the config file {base}, line 2:')):
        load_config(str(base), excerpt())


def test_no_workers_with_persistent_workers_loads_in_the_main_process(
        logged_warnings):
    """MMPose's configs keep workers alive; num_workers=0 asks for none,
    which torch's DataLoader refuses with persistent_workers=True (after
    the model is built): the loader is built without."""
    from mmengine.runner import Runner
    cfg = load_config(
        CONFIG,
        excerpt(
            **{
                'test_dataloader.num_workers': 0,
                'test_dataloader.persistent_workers': True
            }),
        phases=['test'])
    assert cfg.test_dataloader.persistent_workers is False
    assert [r.getMessage() for r in logged_warnings] == [
        'test_dataloader.num_workers=0: no worker processes, so '
        'persistent_workers=True does not apply (set to False).'
    ]
    loader = Runner.build_dataloader(cfg.test_dataloader)
    assert len(next(iter(loader))['inputs']) == 4  # the excerpt's batch
