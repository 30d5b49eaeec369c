"""Custom keypoint sets: the synthetic generator's K=16 / K=21 layouts,
the short keypoint file, CustomKeypointDataset and tools/check_dataset.py."""
import json
import shutil

import numpy as np
import pytest
from mmpose.registry import DATASETS, METRICS

from sspose_mm.datasets.custom import (Finding, check_keypoint_dataset,
                                       keypoint_dataset_info,
                                       load_keypoint_file)
from sspose_mm.errors import DataError
from sspose_mm.synthetic import (COCO_FEET_LAYOUT, COCO_LAYOUT, MPII_LAYOUT,
                                 generate_synthetic_coco, keypoint_file_path,
                                 render_scene)
from conftest import run_tool
from test_datasets_benchmarks import coco_checkpoint  # noqa: F401 (fixtures)
from test_datasets_benchmarks import plain_config_text

SEED = 5


@pytest.fixture(
    scope='module',
    params=[MPII_LAYOUT, COCO_FEET_LAYOUT],
    ids=lambda layout: f'K{layout.num_keypoints}')
def generated(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param.name)
    result = generate_synthetic_coco(
        out, {'val': 3}, seed=SEED, layout=request.param)
    return request.param, out, result


def custom_dataset_cfg(out, test_mode=True):
    return dict(
        type='CustomKeypointDataset',
        data_root=str(out),
        ann_file='annotations/person_keypoints_val.json',
        data_prefix=dict(img='val/'),
        metainfo=dict(from_file=str(keypoint_file_path(out))),
        test_mode=test_mode)


def test_importing_the_package_registers_the_custom_pieces():
    """Configs only import ``sspose_mm`` (custom_imports)."""
    from mmpose.registry import HOOKS, TRANSFORMS

    import sspose_mm.datasets as datasets
    import sspose_mm.engine.hooks as hooks
    assert DATASETS.get('CustomKeypointDataset') is \
        datasets.CustomKeypointDataset
    assert TRANSFORMS.get('ToKeypointLayout') is datasets.ToKeypointLayout
    assert METRICS.get('SharedKeypointCocoMetric') is not None
    assert HOOKS.get('KeypointTransferHook') is hooks.KeypointTransferHook


def test_layouts_have_16_and_21_keypoints():
    assert MPII_LAYOUT.num_keypoints == 16
    assert COCO_FEET_LAYOUT.num_keypoints == 21
    for layout in (MPII_LAYOUT, COCO_FEET_LAYOUT):
        flip = layout.flip_indices
        assert [flip[i] for i in flip] == list(range(layout.num_keypoints))
        assert len(layout.sigmas) == layout.num_keypoints


def test_layouts_read_the_coco_bodies():
    """Same scene, other layouts: shared anchors give the same points."""
    coco = render_scene(SEED, 200001)
    mpii = render_scene(SEED, 200001, layout=MPII_LAYOUT)
    feet = render_scene(SEED, 200001, layout=COCO_FEET_LAYOUT)
    assert np.array_equal(coco.image, mpii.image)
    np.testing.assert_array_equal(feet.keypoints[:, :17], coco.keypoints)
    # MPII 0 right_ankle = COCO 16, MPII 15 left_wrist = COCO 9
    np.testing.assert_array_equal(mpii.keypoints[:, 0], coco.keypoints[:, 16])
    np.testing.assert_array_equal(mpii.keypoints[:, 15], coco.keypoints[:, 9])


def test_generator_writes_the_keypoint_file_only_for_other_layouts(
        generated, tmp_path):
    layout, out, result = generated
    assert result['keypoint_file'] == keypoint_file_path(out)
    spec = json.loads(keypoint_file_path(out).read_text())
    assert spec['keypoints'] == list(layout.names)
    info = load_keypoint_file(str(keypoint_file_path(out)))
    assert len(info['keypoint_info']) == layout.num_keypoints

    coco = generate_synthetic_coco(tmp_path, {'val': 1}, seed=SEED)
    assert 'keypoint_file' not in coco
    assert not keypoint_file_path(tmp_path).exists()
    assert COCO_LAYOUT.to_json() == json.loads(
        (tmp_path / 'generation.json').read_text())['params']['layout']


def test_custom_dataset_loads_with_its_keypoint_count_and_scores_ap_one(
        generated):
    layout, out, _ = generated
    dataset = DATASETS.build(custom_dataset_cfg(out))
    k = layout.num_keypoints
    assert dataset.metainfo['num_keypoints'] == k
    assert dataset.metainfo['flip_indices'] == layout.flip_indices
    np.testing.assert_allclose(dataset.metainfo['sigmas'], layout.sigmas)
    anns = json.loads(
        (out /
         'annotations/person_keypoints_val.json').read_text())['annotations']
    assert len(dataset) == sum(a['num_keypoints'] > 0 for a in anns)
    assert dataset[0]['keypoints'].shape == (1, k, 2)

    metric = METRICS.build(
        dict(
            type='CocoMetric',
            ann_file=str(out / 'annotations/person_keypoints_val.json')))
    metric.dataset_meta = dataset.metainfo
    samples = []
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        samples.append(
            dict(
                id=info['id'],
                img_id=info['img_id'],
                pred_instances=dict(
                    keypoints=info['keypoints'].copy(),
                    keypoint_scores=np.ones((1, k))),
                gt_instances=dict(bbox_scores=np.ones(1))))
    metric.process([], samples)
    assert metric.evaluate(len(dataset))['coco/AP'] == pytest.approx(1.0)


def test_custom_dataset_rejects_a_keypoint_count_mismatch(generated, tmp_path):
    layout, out, _ = generated
    spec = json.loads(keypoint_file_path(out).read_text())
    spec['keypoints'] = spec['keypoints'][:-1]
    spec['sigmas'] = spec['sigmas'][:-1]
    spec['flip_pairs'] = [
        p for p in spec['flip_pairs'] if max(p) < len(spec['keypoints'])
    ]
    spec['skeleton'] = [
        p for p in spec['skeleton'] if max(p) < len(spec['keypoints'])
    ]
    spec['upper_body'] = [
        n for n in spec['upper_body'] if n in spec['keypoints']
    ]
    short = tmp_path / 'short.json'
    short.write_text(json.dumps(spec))
    cfg = dict(custom_dataset_cfg(out), metainfo=dict(from_file=str(short)))
    with pytest.raises(
            DataError,
            match=f'has {layout.num_keypoints} '
            f'keypoints but the keypoint file names '
            f'{layout.num_keypoints - 1}'):
        DATASETS.build(cfg)


GOOD = dict(
    keypoints=['head', 'left_hand', 'right_hand'],
    skeleton=[['head', 'left_hand'], [0, 2]],
    flip_pairs=[['left_hand', 'right_hand']],
    sigmas=[0.05, 0.06, 0.06])


def test_short_keypoint_spec_becomes_mmpose_metainfo():
    info = keypoint_dataset_info(dict(GOOD, upper_body=['head']))
    from mmpose.datasets.datasets.utils import parse_pose_metainfo
    parsed = parse_pose_metainfo(info)
    assert parsed['num_keypoints'] == 3
    assert parsed['flip_indices'] == [0, 2, 1]
    assert parsed['skeleton_links'] == [(0, 1), (0, 2)]
    assert parsed['upper_body_ids'] == [0]
    assert parsed['lower_body_ids'] == [1, 2]


@pytest.mark.parametrize('change,message', [
    (dict(sigmas=None), '"sigmas" .* is missing'),
    (dict(sigmas=[0.05, 0.05]), '"sigmas" must be 3 positive numbers'),
    (dict(flip_pairs=[['left_hand', 'left_foot']]), 'unknown keypoint '
     '"left_foot"'),
    (dict(flip_pairs=[['head', 'head']]), 'with itself'),
    (dict(keypoints=['head', 'head', 'tail']), 'names repeat'),
    (dict(skeleton=[[0, 7]]), r'skeleton\[0\]: 7 is neither'),
])
def test_bad_keypoint_files_are_named_errors(tmp_path, change, message):
    spec = dict(GOOD, **change)
    if spec['sigmas'] is None:
        del spec['sigmas']
    path = tmp_path / 'kp.json'
    path.write_text(json.dumps(spec))
    with pytest.raises(DataError, match=message) as error:
        load_keypoint_file(str(path))
    assert str(path) in str(error.value)


def by_check(findings):
    return {f.check.split(' in ')[0]: f for f in findings}


def test_check_finds_each_kind_of_problem(generated, tmp_path):
    layout, out, _ = generated
    info = load_keypoint_file(str(keypoint_file_path(out)))
    ann_file = out / 'annotations/person_keypoints_val.json'
    clean = check_keypoint_dataset(
        str(ann_file),
        str(out / 'val'),
        info,
        model_keypoints=layout.num_keypoints)
    assert {f.severity for f in clean} == {Finding.OK}, clean

    coco = json.loads(ann_file.read_text())
    coco['annotations'][0]['keypoints'] = coco['annotations'][0][
        'keypoints'][:-3]
    coco['annotations'][1]['bbox'][0] = -20
    coco['images'].append(dict(coco['images'][0], id=9, file_name='no.jpg'))
    bad_ann = tmp_path / 'bad.json'
    bad_ann.write_text(json.dumps(coco))
    # swap a left/right pair for two unrelated keypoints
    spec = json.loads(keypoint_file_path(out).read_text())
    a, b = spec['flip_pairs'][0]
    c, d = spec['flip_pairs'][1]
    spec['flip_pairs'][:2] = [[a, c], [b, d]]
    findings = by_check(
        check_keypoint_dataset(
            str(bad_ann),
            str(out / 'val'),
            keypoint_dataset_info(spec),
            model_keypoints=17))
    assert findings['images exist'].count == 1
    assert 'no.jpg' in findings['images exist'].examples[0]
    count = findings[f'keypoint count is {layout.num_keypoints}']
    assert count.severity == Finding.ERROR and count.count == 2
    assert any('the model predicts 17' in e for e in count.examples)
    assert findings['flip pairs are symmetric left/right'].count >= 2
    assert findings['boxes inside their images'].count == 1
    assert findings['visibility flags are 0, 1 or 2'].severity == Finding.OK


def run_check_tool(args):
    """Exit status and output of tools/check_dataset.py, run as a user
    does (its exit statuses and table are what is checked)."""
    result = run_tool(['tools/check_dataset.py'] + args, timeout=300)
    return result.returncode, result


# The tool's table, exit statuses and config reading do not depend on the
# layout (check_keypoint_dataset's findings for both layouts are
# test_check_finds_each_kind_of_problem's): the command-line tests, a few
# tool processes each, run on one layout.
ONE_LAYOUT = pytest.mark.parametrize(
    'generated', [MPII_LAYOUT], indirect=True, ids=['K16'])


@pytest.mark.slow
@ONE_LAYOUT
def test_check_tool_prints_one_table_and_fails_on_errors(generated, tmp_path):
    layout, out, _ = generated
    args = [
        '--ann-file',
        str(out / 'annotations/person_keypoints_val.json'), '--img-dir',
        str(out / 'val'), '--keypoints',
        str(keypoint_file_path(out))
    ]
    code, printed = run_check_tool(args)
    assert code == 0, printed.stdout + printed.stderr[-3000:]
    assert '0 failed' in printed.stdout

    images = tmp_path / 'images'
    shutil.copytree(out / 'val', images)
    next(images.iterdir()).unlink()
    code, printed = run_check_tool(
        args[:2] + ['--img-dir', str(images)] + args[4:] +
        ['--num-keypoints', str(layout.num_keypoints + 1)])
    assert code == 1
    lines = printed.stdout.splitlines()
    assert lines[1].split() == ['check', 'result', 'count', 'examples']
    assert any(
        line.startswith('images exist') and 'ERROR' in line for line in lines)
    assert '2 failed' in printed.stdout

    code, printed = run_check_tool(
        args[:4] + ['--keypoints', str(tmp_path / 'none.json')])
    assert code == 2 and 'does not exist' in printed.stderr


CUSTOM_CONFIG = '''
_base_ = '{base}'

data_root = '{root}/'
keypoints = dict(from_file=data_root + 'annotations/keypoints.json')
model = dict(head=dict(out_channels={k}))
train_dataloader = dict(
    dataset=dict(
        type='CustomKeypointDataset',
        data_root=data_root,
        ann_file='annotations/person_keypoints_train.json',
        data_prefix=dict(img='train/'),
        metainfo=keypoints))
val_dataloader = dict(
    dataset=dict(
        type='CustomKeypointDataset',
        data_root=data_root,
        ann_file='annotations/person_keypoints_val.json',
        bbox_file=None,
        data_prefix=dict(img='val/'),
        metainfo=keypoints))
test_dataloader = val_dataloader
val_evaluator = dict(
    ann_file=data_root + 'annotations/person_keypoints_val.json')
test_evaluator = val_evaluator
load_from = '{checkpoint}'
custom_hooks = [
    dict(type='KeypointTransferHook'),
]
'''


def test_documented_custom_config_fine_tunes_through_the_runner(
        tmp_path, coco_checkpoint, plain_config_text):
    """The config of docs/datasets.md on a synthetic K=21 set, starting
    from a 17-keypoint checkpoint: trains and evaluates its own layout."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    from test_datasets_benchmarks import COCO_R_A4, runner_cfg, shrink
    root = tmp_path / 'data'
    generate_synthetic_coco(
        root, {
            'train': 1,
            'val': 1
        },
        seed=SEED,
        layout=COCO_FEET_LAYOUT,
        max_people=3)
    path = tmp_path / 'my_config.py'
    path.write_text(
        CUSTOM_CONFIG.format(
            base=COCO_R_A4, root=root, k=21, checkpoint=coco_checkpoint))
    cfg = runner_cfg(Config.fromfile(str(path)), tmp_path / 'work')
    shrink(cfg)
    for phase in ('train', 'val', 'test'):
        cfg[f'{phase}_dataloader'].update(
            batch_size=4, num_workers=0, persistent_workers=False)
    cfg.train_cfg.update(max_epochs=1, val_interval=1)
    Runner.from_cfg(cfg).train()
    log = next((tmp_path / 'work').rglob('*.log')).read_text()
    assert 'head.final_layer.weight ((17, 256, 1, 1) -> (21, 256, 1, 1))' \
        in log
    assert 'coco/AP: ' in log


@pytest.mark.slow
@ONE_LAYOUT
def test_check_tool_reads_the_datasets_and_model_of_a_config(
        generated, tmp_path):
    from test_datasets_benchmarks import COCO_R_A4
    layout, out, _ = generated
    results = {}
    for k in (layout.num_keypoints, 17):
        path = tmp_path / f'k{k}.py'
        path.write_text(
            CUSTOM_CONFIG.format(base=COCO_R_A4, root=out, k=k, checkpoint=''))
        results[k] = run_check_tool([str(path), '--phase', 'val'])
    code, printed = results[layout.num_keypoints]
    assert code == 0 and 'val_dataloader.dataset' in printed.stdout
    assert '0 failed, 0 warnings, 8 passed' in printed.stdout
    code, printed = results[17]
    assert code == 1 and 'the model predicts 17' in printed.stdout
