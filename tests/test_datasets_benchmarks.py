"""MPII, CrowdPose and OCHuman configs on the real excerpts in
tests/data: instance counts, ground truth scoring perfectly with each
metric, and train/test runs through MMPose's runner (tiny input size)."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmpose.registry import DATASETS, METRICS, TRANSFORMS
from scipy.io import savemat

from sspose_mm.datasets.keypoint_layout import (keypoint_names,
                                                pipeline_num_keypoints,
                                                shared_keypoint_mappings)
from conftest import DATA, REPO, run_tool

CONFIGS = REPO / 'configs' / 'transpose'
MPII = CONFIGS / 'td-hm_transpose-r-a4_1xb20-100e_mpii-256x256.py'
COCO_R_A4 = CONFIGS / 'td-hm_transpose-r-a4_1xb20-230e_coco-256x192.py'
CROWDPOSE = COCO_R_A4.with_name(COCO_R_A4.stem + '_test-crowdpose.py')
OCHUMAN = COCO_R_A4.with_name(COCO_R_A4.stem + '_test-ochuman.py')
COCO_H_A4 = CONFIGS / 'td-hm_transpose-h-a4_1xb14-240e_coco-256x192.py'
# Every dataset variant with the COCO model it starts from.
VARIANTS = [
    (MPII, COCO_R_A4), (CROWDPOSE, COCO_R_A4), (OCHUMAN, COCO_R_A4),
    (CONFIGS / 'td-hm_transpose-h-a4_1xb14-100e_mpii-256x256.py', COCO_H_A4)
] + [(COCO_H_A4.with_name(COCO_H_A4.stem + suffix), COCO_H_A4)
     for suffix in ('_test-crowdpose.py', '_test-ochuman.py')]


def write_headboxes(path: Path) -> Path:
    """A stand-in for MPII's mpii_gt_val.mat (not in the excerpt): a square
    head box per person spanning upper neck (8) to head top (9)."""
    people = json.loads((DATA / 'mpii/test_mpii.json').read_text())
    boxes = []
    for person in people:
        neck, top = np.array(person['joints'])[[8, 9]]
        centre, side = (neck + top) / 2, np.linalg.norm(top - neck)
        boxes.append([centre - side / 2, centre + side / 2])
    # (2 corners, 2 coordinates, N people) as in the official file
    savemat(path, {'headboxes_src': np.transpose(boxes, (1, 2, 0))})
    return path


@pytest.fixture(scope='module')
def headbox_file(tmp_path_factory):
    return write_headboxes(tmp_path_factory.mktemp('mpii') / 'gt_val.mat')


def on_excerpt(config: Path,
               headbox_file: Path = None,
               bbox_file: bool = False) -> Config:
    """``config`` reading the shared excerpt of its dataset."""
    cfg = Config.fromfile(str(config))
    dataset_type = cfg.test_dataloader.dataset.type
    name, ann = {
        'MpiiDataset': ('mpii', 'test_mpii.json'),
        'CrowdPoseDataset': ('crowdpose', 'test_crowdpose.json'),
        'OCHumanDataset': ('ochuman', 'test_ochuman.json'),
    }[dataset_type]
    root = DATA / name
    for phase in ('train', 'val', 'test'):
        loader = cfg[f'{phase}_dataloader']
        if phase == 'train' and loader.dataset.type != dataset_type:
            continue  # evaluation-only config: trained on COCO
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        loader.dataset.update(
            data_root=str(root), ann_file=ann, data_prefix=dict(img=''))
        if phase != 'train':
            if 'bbox_file' in loader.dataset:
                loader.dataset.bbox_file = (
                    str(root / 'test_crowdpose_det_AP_40.json')
                    if bbox_file else None)
            if dataset_type == 'MpiiDataset':
                loader.dataset.headbox_file = str(headbox_file)
            else:
                cfg[f'{phase}_evaluator'].ann_file = str(root / ann)
    return cfg


@pytest.mark.parametrize(
    'config,phase,bbox_file,expected',
    [
        (MPII, 'train', False, 5),  # 5 people in the MPII excerpt
        (MPII, 'test', False, 5),
        (CROWDPOSE, 'test', False, 4),  # 5 annotations, 4 with keypoints
        (CROWDPOSE, 'test', True, 6),  # 6 detector boxes
        (OCHUMAN, 'test', False, 5),  # 5 people, all with keypoints
    ])
def test_each_config_loads_the_expected_instances(headbox_file, config, phase,
                                                  bbox_file, expected):
    cfg = on_excerpt(config, headbox_file, bbox_file)
    dataset = DATASETS.build(cfg[f'{phase}_dataloader'].dataset)
    assert len(dataset) == expected


@pytest.mark.parametrize(
    'config,coco', VARIANTS, ids=[v.stem for v, _ in VARIANTS])
def test_dataset_variants_keep_their_coco_model(config, coco):
    """Same network as the COCO config; MPII only re-creates the head's
    last layer (16 keypoints) and starts from the COCO checkpoint instead of
    ImageNet. The model builds, and the test pipeline feeds it the right
    number of keypoints (the pre-flight check of tools/test.py)."""
    from mmpose.registry import MODELS

    from sspose_mm.cli.checks import check_keypoint_count
    cfg, coco_cfg = Config.fromfile(str(config)), Config.fromfile(str(coco))
    mpii = cfg.test_dataloader.dataset.type == 'MpiiDataset'
    assert cfg.model.neck == coco_cfg.model.neck
    expected_backbone = dict(
        coco_cfg.model.backbone,
        init_cfg=None if mpii else coco_cfg.model.backbone.init_cfg)
    assert cfg.model.backbone == expected_backbone
    head = {
        k: v
        for k, v in cfg.model.head.items()
        if k not in ('out_channels', 'decoder')
    }
    assert head == {
        k: v
        for k, v in coco_cfg.model.head.items()
        if k not in ('out_channels', 'decoder')
    }
    assert cfg.model.head.out_channels == (16 if mpii else 17)
    assert cfg.load_from == (
        f'checkpoints/transpose-{coco.stem.split("_")[1][10:]}.pth'
        if mpii else None)
    check_keypoint_count(cfg, cfg.test_dataloader.dataset, 'test')
    cfg.model.backbone.init_cfg = None
    MODELS.build(cfg.model)


def ground_truth_samples(cfg: Config) -> tuple:
    """The test dataset and each instance's ground truth as a prediction
    (through the config's layout conversion when the model has another
    keypoint set)."""
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    convert = None
    for step in cfg.test_dataloader.dataset.pipeline:
        if step['type'] == 'ToKeypointLayout':
            convert = TRANSFORMS.build(step)
    samples = []
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        gt = dict(info)
        if convert is not None:
            gt = convert(gt)
        keypoints = gt['keypoints'].copy()
        samples.append(
            dict(
                id=info['id'],
                img_id=info['img_id'],
                pred_instances=dict(
                    keypoints=keypoints,
                    keypoint_scores=np.ones(keypoints.shape[:2])),
                gt_instances=dict(
                    bbox_scores=np.ones(1),
                    bboxes=info['bbox'],
                    keypoints=info['keypoints'],
                    keypoints_visible=info['keypoints_visible'],
                    head_size=info.get('head_size'))))
    return dataset, samples


def evaluate(cfg: Config, dataset, samples) -> dict:
    metric = METRICS.build(cfg.test_evaluator)
    metric.dataset_meta = dataset.metainfo
    metric.process([], samples)
    return metric.evaluate(len(samples))


def test_mpii_ground_truth_scores_pckh_100(headbox_file):
    cfg = on_excerpt(MPII, headbox_file)
    dataset, samples = ground_truth_samples(cfg)
    # MpiiPCKAccuracy adds 1 to predictions (0-based) to compare with
    # MPII's 1-based (Matlab) annotations.
    for sample in samples:
        sample['pred_instances']['keypoints'] -= 1
    assert evaluate(cfg, dataset, samples)['PCK'] == pytest.approx(100.0)
    # A shift of 0.6 head sizes (threshold 0.5) fails every keypoint.
    for sample in samples:
        size = sample['gt_instances']['head_size']
        sample['pred_instances']['keypoints'] += 0.6 * float(np.ravel(size)[0])
    assert evaluate(cfg, dataset, samples)['PCK'] == pytest.approx(0.0)


@pytest.mark.parametrize('config,key', [(CROWDPOSE, 'crowdpose/AP'),
                                        (OCHUMAN, 'ochuman/AP')])
def test_ground_truth_scores_ap_one(config, key):
    """For CrowdPose the ground truth goes through the config's conversion
    to COCO's layout and back to the 12 shared keypoints."""
    cfg = on_excerpt(config)
    dataset, samples = ground_truth_samples(cfg)
    assert samples[0]['pred_instances']['keypoints'].shape[1] == 17
    assert evaluate(cfg, dataset, samples)[key] == pytest.approx(1.0)
    for index, sample in enumerate(samples):
        box = dataset.get_data_info(index)['bbox'][0]
        sample['pred_instances']['keypoints'] += 0.1 * (box[2] - box[0])
    assert evaluate(cfg, dataset, samples)[key] < 0.9


def test_crowdpose_converters_are_the_shared_keypoints_by_name():
    cfg = Config.fromfile(str(CROWDPOSE))
    crowdpose = keypoint_names(
        dict(from_file='configs/_base_/datasets/crowdpose.py'))
    coco = keypoint_names(dict(from_file='configs/_base_/datasets/coco.py'))
    expected = shared_keypoint_mappings(crowdpose, coco)
    for name in ('gt_converter', 'pred_converter'):
        got = cfg.test_evaluator[name]
        assert got['num_keypoints'] == expected[name]['num_keypoints'] == 12
        assert [tuple(m) for m in got['mapping']] == expected[name]['mapping']


def test_the_model_side_keypoint_count_of_the_crowdpose_config():
    """What config_checks.check_keypoint_count compares with the head (17),
    not the dataset's 14."""
    cfg = Config.fromfile(str(CROWDPOSE))
    pipeline = cfg.test_dataloader.dataset.pipeline
    assert pipeline_num_keypoints(pipeline) == cfg.model.head.out_channels
    assert pipeline_num_keypoints(
        Config.fromfile(str(OCHUMAN)).test_dataloader.dataset.pipeline) is None


def shrink(cfg: Config, input_size=(32, 32), heatmap_size=(8, 8)) -> None:
    """Every crop and codec at a tiny size (the model is size-agnostic)."""

    def visit(node):
        if isinstance(node, dict):
            if 'input_size' in node:
                node['input_size'] = input_size
                if 'heatmap_size' in node:
                    node['heatmap_size'] = heatmap_size
            for value in node.values():
                visit(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                visit(value)

    for key in ('model', 'train_dataloader', 'val_dataloader',
                'test_dataloader'):
        visit(cfg[key])


@pytest.fixture
def plain_config_text(monkeypatch):
    """The runner formats its config with yapf to log and dump it, most of
    a tiny run's time on these 2 CPU cores; the raw text serves as well."""
    monkeypatch.setattr(Config, 'pretty_text',
                        property(lambda self: self.text))


def runner_cfg(cfg: Config, work_dir: Path) -> Config:
    cfg.work_dir = str(work_dir)
    cfg.model.backbone.init_cfg = None  # no ImageNet download
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.default_hooks.visualization = dict(
        type='PoseVisualizationHook', enable=False)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)
    cfg.log_level = 'INFO'
    return cfg


@pytest.fixture(scope='module')
def coco_checkpoint(tmp_path_factory):
    """A 17-keypoint TransPose-R-A4 checkpoint (random weights)."""
    from mmpose.registry import MODELS
    cfg = Config.fromfile(str(COCO_R_A4))
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    path = tmp_path_factory.mktemp('coco') / 'transpose-r-a4.pth'
    torch.save({'state_dict': model.state_dict()}, path)
    return path


def test_mpii_fine_tunes_from_a_coco_checkpoint_through_the_runner(
        headbox_file, coco_checkpoint, tmp_path, plain_config_text):
    """Train and validate the fine-tune config from a 17-keypoint checkpoint.
    With lr 0 the runner's steps leave the parameters as loaded, so they
    show what the hook let through: all but the head's last layer."""
    cfg = runner_cfg(on_excerpt(MPII, headbox_file), tmp_path)
    shrink(cfg)
    cfg.load_from = str(coco_checkpoint)
    cfg.train_cfg.update(max_epochs=1, val_interval=1)  # 3 iterations of 2
    cfg.optim_wrapper.optimizer.lr = 0.
    cfg.param_scheduler = None
    runner = Runner.from_cfg(cfg)
    runner.train()
    log = next(tmp_path.rglob('*.log')).read_text()
    assert ('keypoint transfer: 2 keys re-initialised, all other weights '
            'loaded from the checkpoint: head.final_layer.bias ((17,) -> '
            '(16,)), head.final_layer.weight ((17, 256, 1, 1) -> '
            '(16, 256, 1, 1))') in log
    assert 'Epoch(train) [1][3/3]' in log
    assert 'Epoch(val) [1][3/3]' in log and 'PCK: ' in log
    coco = torch.load(coco_checkpoint, weights_only=True)['state_dict']
    parameters = dict(runner.model.named_parameters())
    assert parameters['head.final_layer.weight'].shape[0] == 16
    reused = [k for k in parameters if not k.startswith('head.final_layer')]
    assert len(reused) == len(parameters) - 2
    for key in reused:
        assert torch.equal(parameters[key], coco[key]), key


@pytest.mark.parametrize('config,key,bbox_file',
                         [(CROWDPOSE, 'crowdpose/AP', True),
                          (OCHUMAN, 'ochuman/AP', False)])
@pytest.mark.slow
def test_coco_model_tests_on_crowdpose_and_ochuman(config, key, bbox_file,
                                                   coco_checkpoint, tmp_path):
    """The documented command: tools/test.py with the 17-keypoint COCO
    checkpoint on a dataset of another layout (CrowdPose: 14 keypoints,
    converted by the pipeline), passing the pre-flight checks."""
    cfg = runner_cfg(on_excerpt(config, bbox_file=bbox_file), tmp_path)
    shrink(cfg)
    config_file = tmp_path / config.name
    cfg.dump(str(config_file))
    result = run_tool([
        'tools/test.py',
        str(config_file),
        str(coco_checkpoint), '--out',
        str(tmp_path / 'metrics.json')
    ])
    assert result.returncode == 0, (
        result.stdout[-3000:] + result.stderr[-3000:])
    metrics = json.loads((tmp_path / 'metrics.json').read_text())
    assert 0.0 <= metrics[key] <= 1.0
