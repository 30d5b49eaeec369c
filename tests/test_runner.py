"""End to end through MMPose's runner with the real COCO excerpt in
tests/data/coco: training, atomic checkpoints that load with
weights_only=True, resume, testing with ground-truth and detected boxes,
2-process CPU distributed runs, and CocoMetric wiring."""
import json
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmpose.registry import DATASETS, METRICS

from conftest import (COCO, QUICKSTART_CONFIG, as_cli, coco_excerpt_options,
                      run_tool)

CONFIG = str(QUICKSTART_CONFIG)


def excerpt_config(bbox_file: bool = False) -> Config:
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(coco_excerpt_options(bbox_file))
    return cfg


def check_ok(result):
    assert result.returncode == 0, (
        result.stdout[-3000:] + result.stderr[-3000:])
    return result.stdout + result.stderr


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """Two epochs (3 iterations each) on the 12 excerpt people."""
    work_dir = tmp_path_factory.mktemp('train')
    options = dict(coco_excerpt_options(), **{
        'train_cfg.max_epochs': 2,
        'train_cfg.val_interval': 2
    })
    check_ok(
        run_tool(['tools/train.py', CONFIG, '--work-dir',
                  str(work_dir)] + as_cli(options)))
    return work_dir, options


@pytest.mark.slow
def test_training_writes_checkpoints_that_load_weights_only(trained):
    work_dir, _ = trained
    checkpoint = torch.load(work_dir / 'epoch_2.pth', weights_only=True)
    assert checkpoint['meta']['epoch'] == 2
    assert any(
        k.startswith('neck.layers.0.self_attn')
        for k in checkpoint['state_dict'])
    # Atomic writes leave no temporary files behind.
    assert not list(work_dir.glob('.*.tmp'))
    last = (work_dir / 'last_checkpoint').read_text().strip()
    assert Path(last).name in ('epoch_2.pth', 'best_coco_AP_epoch_2.pth')


@pytest.mark.slow
def test_resume_restores_optimizer_and_continues(trained, tmp_path):
    """``--resume`` without a value finds the work dir's latest checkpoint."""
    work_dir, options = trained
    resume_dir = tmp_path / 'resume'
    resume_dir.mkdir()
    checkpoint = resume_dir / 'epoch_2.pth'
    checkpoint.write_bytes((work_dir / 'epoch_2.pth').read_bytes())
    (resume_dir / 'last_checkpoint').write_text(str(checkpoint))
    options = dict(options, **{'train_cfg.max_epochs': 3})
    log = check_ok(
        run_tool([
            'tools/train.py', CONFIG, '--work-dir',
            str(resume_dir), '--resume'
        ] + as_cli(options)))
    assert 'resumed epoch: 2, iter: 6' in log
    state = torch.load(resume_dir / 'epoch_3.pth', weights_only=True)
    steps = {int(s['step']) for s in state['optimizer']['state'].values()}
    # 3 iterations per epoch: Adam's step count continued from 6, not 0.
    assert steps == {9}


@pytest.mark.slow
def test_vis_predictions_draws_every_person(trained, tmp_path):
    work_dir, _ = trained
    log = check_ok(
        run_tool([
            'tools/vis_predictions.py', CONFIG,
            str(work_dir / 'epoch_2.pth'), '--out-dir',
            str(tmp_path), '--ann-file',
            str(COCO / 'test_coco.json'), '--img-dir',
            str(COCO), '--num-images', '2'
        ]))
    # The excerpt's first two images have 1 and 2 people with keypoints.
    assert '000000000785.jpg (1 people)' in log
    assert '000000040083.jpg (2 people)' in log
    for name in ('000000000785.jpg', '000000040083.jpg'):
        drawn = cv2.imread(str(tmp_path / name))
        assert drawn.shape == cv2.imread(str(COCO / name)).shape


def assert_coco_metrics(out: Path) -> None:
    metrics = json.loads(out.read_text())
    assert {'coco/AP', 'coco/AR', 'coco/AP .5'} <= set(metrics)
    assert all(0.0 <= v <= 1.0 for v in metrics.values())


@pytest.mark.slow
def test_test_tool_reports_coco_metrics_on_detected_boxes(trained, tmp_path):
    """With the detections' boxes; with the ground-truth boxes: the plain
    run of test_fast_path_gives_the_same_predictions."""
    work_dir, _ = trained
    out = tmp_path / 'metrics.json'
    check_ok(
        run_tool([
            'tools/test.py', CONFIG,
            str(work_dir / 'epoch_2.pth'), '--work-dir',
            str(tmp_path), '--out',
            str(out)
        ] + as_cli(coco_excerpt_options(bbox_file=True))))
    assert_coco_metrics(out)


@pytest.mark.slow
def test_fast_path_gives_the_same_predictions(trained, tmp_path):
    """tools/test.py --fast (folded norms, channels-last) on the trained
    checkpoint: the predictions CocoMetric writes move by float round-off
    only. The heatmaps differ by ~1e-6 of their scale
    (tests/test_fast_inference.py); DARK's Taylor step divides by the
    heatmap's curvature and the crop is scaled up to the image, which made
    that up to 0.007 image pixels here (measured); 0.05 px leaves room,
    while a wrong path moves keypoints by pixels. The model is trained for
    two epochs only: where its heatmap has two maxima equal to round-off the
    argmax can take the other one, a jump of a heatmap cell (measured: 1 of
    the 204 keypoints at 96x72 input); at most 1 in 50 may jump, a wrong
    path moves most of them."""
    work_dir, _ = trained
    predictions = {}
    for name, extra in (('plain', []), ('fast', ['--fast'])):
        prefix = tmp_path / name
        check_ok(
            run_tool([
                'tools/test.py', CONFIG,
                str(work_dir / 'epoch_2.pth'), '--work-dir',
                str(tmp_path / name), '--out', f'{prefix}.json'
            ] + extra + as_cli(
                dict(coco_excerpt_options(), **
                     {'test_evaluator.outfile_prefix': str(prefix)}))))
        assert_coco_metrics(Path(f'{prefix}.json'))
        results = json.loads(Path(f'{prefix}.keypoints.json').read_text())
        predictions[name] = sorted(
            results, key=lambda r: (r['image_id'], r['keypoints'][:2]))
    plain, fast = predictions['plain'], predictions['fast']
    assert len(plain) == len(fast) > 0
    assert [a['image_id'] for a in plain] == [b['image_id'] for b in fast]
    for a, b in zip(plain, fast):
        assert abs(a['score'] - b['score']) < 1e-4
    keypoints = [np.reshape(p['keypoints'], (-1, 3)) for p in (*plain, *fast)]
    plain_xy = np.concatenate(keypoints[:len(plain)])[:, :2]
    fast_xy = np.concatenate(keypoints[len(plain):])[:, :2]
    moved = np.abs(fast_xy - plain_xy).max(1) > 0.05
    assert moved.sum() <= len(moved) / 50, (
        f'{moved.sum()} of {len(moved)} keypoints moved by more than 0.05 '
        'px')


def free_port() -> str:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return str(sock.getsockname()[1])


@pytest.mark.slow
def test_distributed_train_and_test_on_two_cpu_processes(tmp_path):
    env = {'PORT': free_port()}
    options = dict(
        coco_excerpt_options(True), **{
            'train_cfg.max_epochs': 1,
            'train_cfg.val_interval': 1
        })
    log = check_ok(
        run_tool(
            ['./dist_train.sh', CONFIG, '2', '--work-dir',
             str(tmp_path)] + as_cli(options),
            env=env))
    assert 'Distributed training: True' in log
    assert "backend='gloo'" in log or 'gloo' in log
    # The trained checkpoint, and the untrained model (each process must
    # initialise the same weights before the wrapper splits the data).
    for checkpoint in (str(tmp_path / 'epoch_1.pth'), 'none'):
        out = tmp_path / 'metrics.json'
        check_ok(
            run_tool(
                [
                    './dist_test.sh', CONFIG, checkpoint, '2', '--out',
                    str(out), '--work-dir',
                    str(tmp_path)
                ] + as_cli(options),
                env=env))
        assert 'coco/AP' in json.loads(out.read_text())
        out.unlink()


@pytest.mark.parametrize('bbox_file,expected', [(False, 12), (True, 118)])
def test_dataset_instances(bbox_file, expected):
    """Counts from the shared data's README: 12 annotated people, 118
    detector boxes."""
    cfg = excerpt_config(bbox_file).test_dataloader.dataset
    assert len(DATASETS.build(cfg)) == expected


def gt_as_predictions(dataset) -> list:
    samples = []
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        samples.append(
            dict(
                id=info['id'],
                img_id=info['img_id'],
                pred_instances=dict(
                    keypoints=info['keypoints'].copy(),
                    keypoint_scores=np.ones(info['keypoints'].shape[:2])),
                gt_instances=dict(bbox_scores=np.ones(1))))
    return samples


def evaluate_gt(cfg) -> dict:
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    metric = METRICS.build(cfg.test_evaluator)
    metric.dataset_meta = dataset.metainfo
    metric.process([], gt_as_predictions(dataset))
    return metric.evaluate(len(dataset))


def test_ground_truth_as_predictions_scores_ap_one():
    metrics = evaluate_gt(excerpt_config())
    assert metrics['coco/AP'] == pytest.approx(1.0)
    assert metrics['coco/AR'] == pytest.approx(1.0)


def test_perturbed_ground_truth_scores_below_one():
    """The same check fails when predictions are wrong (the metric sees
    them): shifting every keypoint by 10% of the box lowers AP."""
    cfg = excerpt_config()
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    metric = METRICS.build(cfg.test_evaluator)
    metric.dataset_meta = dataset.metainfo
    samples = gt_as_predictions(dataset)
    for index, sample in enumerate(samples):
        box = dataset.get_data_info(index)['bbox'][0]
        sample['pred_instances']['keypoints'] += 0.1 * (box[2] - box[0])
    metric.process([], samples)
    assert metric.evaluate(len(dataset))['coco/AP'] < 0.9


def test_excerpt_is_where_the_tests_expect_it():
    assert (COCO / 'test_coco.json').is_file()


def test_synthetic_ground_truth_scores_ap_one_with_the_quickstart_config(
        tmp_path):
    """The generated annotations are consistent COCO (boxes, areas,
    visibility) as the quickstart's own dataset and metric read them."""
    from sspose_mm.synthetic import generate_synthetic_coco
    generate_synthetic_coco(tmp_path, {'val': 6}, seed=1)
    cfg = Config.fromfile(CONFIG)
    cfg.test_dataloader.dataset.data_root = str(tmp_path)
    cfg.test_dataloader.dataset.bbox_file = None
    cfg.test_evaluator.ann_file = str(tmp_path /
                                      'annotations/person_keypoints_val.json')
    metrics = evaluate_gt(cfg)
    assert metrics['coco/AP'] == pytest.approx(1.0)
