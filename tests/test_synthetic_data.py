"""Tests of the synthetic-people generator and its CLI."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from sspose_mm.synthetic import (COCO_LAYOUT, STYLES, SkeletonLayout,
                                 ensure_synthetic_coco,
                                 generate_synthetic_coco, render_scene,
                                 split_image_ids)
from conftest import run_tool

SPLITS = {'train': 24, 'val': 4}
SEED = 3
W, H = 320, 256


def coco_dataset_cls():
    """mmpose's CocoDataset; importing sspose_mm first applies its compat
    fixes (the mmcv._ext placeholder) that mmpose's imports need."""
    from mmpose.datasets import CocoDataset

    import sspose_mm  # noqa: F401
    return CocoDataset


@pytest.fixture(scope='module')
def generated(tmp_path_factory):
    """style -> (data root, result) of a generation with SPLITS and SEED,
    made once per style."""
    made = {}

    def get(style: str):
        if style not in made:
            out = tmp_path_factory.mktemp(f'synthetic_{style}')
            made[style] = out, generate_synthetic_coco(
                out, SPLITS, seed=SEED, style=style)
        return made[style]

    return get


@pytest.fixture(params=sorted(STYLES))
def dataset(request, generated):
    """What every style must satisfy: each test runs once per style."""
    return generated(request.param)


def style_of(out: Path) -> str:
    return load_json(out / 'generation.json')['params']['style']


def load_json(path):
    with open(path) as f:
        return json.load(f)


def all_annotations(out):
    anns = []
    for split in SPLITS:
        ann_file = out / 'annotations' / f'person_keypoints_{split}.json'
        anns += load_json(ann_file)['annotations']
    return anns


def file_bytes(root: Path) -> dict:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob('*')) if p.is_file()
    }


def test_layout_on_disk(dataset):
    out, result = dataset
    ids = split_image_ids(SPLITS)
    for split, n in SPLITS.items():
        info = result['splits'][split]
        assert info['num_images'] == n
        assert info['ann_file'] == (
            out / 'annotations' / f'person_keypoints_{split}.json')
        assert info['bbox_file'] == (
            out / 'person_detection_results' / f'{split}_detections.json')
        names = sorted(p.name for p in (out / split).iterdir())
        assert names == [f'{i:06d}.jpg' for i in ids[split]]
    assert not set(ids['train']) & set(ids['val'])
    assert (out / 'generation.json').is_file()


def test_same_seed_same_bytes_other_seed_differs(dataset, tmp_path):
    out, _ = dataset
    style = style_of(out)
    generate_synthetic_coco(tmp_path / 'again', SPLITS, seed=SEED, style=style)
    assert file_bytes(tmp_path / 'again') == file_bytes(out)

    # An image does not depend on the other splits or generation order.
    generate_synthetic_coco(
        tmp_path / 'val_only', {'val': SPLITS['val']}, seed=SEED, style=style)
    for name in ('val/200000.jpg', 'val/200003.jpg',
                 'annotations/person_keypoints_val.json'):
        assert ((tmp_path / 'val_only' /
                 name).read_bytes() == (out / name).read_bytes())

    generate_synthetic_coco(
        tmp_path / 'other', SPLITS, seed=SEED + 1, style=style)
    a = load_json(out / 'annotations/person_keypoints_train.json')
    b = load_json(tmp_path / 'other/annotations/person_keypoints_train.json')
    assert a['images'] == b['images']  # same ids and sizes ...
    assert a['annotations'] != b['annotations']  # ... other people
    img_a = cv2.imread(str(out / 'train/100000.jpg'))
    img_b = cv2.imread(str(tmp_path / 'other/train/100000.jpg'))
    assert np.abs(img_a.astype(int) - img_b.astype(int)).mean() > 10


def test_annotations_are_valid_coco(dataset):
    from pycocotools.coco import COCO
    out, _ = dataset
    for split, n in SPLITS.items():
        coco = COCO(str(out / f'annotations/person_keypoints_{split}.json'))
        assert len(coco.getImgIds()) == n
        cat = coco.loadCats([1])[0]
        assert cat['keypoints'] == list(COCO_LAYOUT.names)
        assert len(cat['skeleton']) == 19
        assert all(1 <= i <= 17 for pair in cat['skeleton'] for i in pair)
        for img in coco.loadImgs(coco.getImgIds()):
            assert (img['width'], img['height']) == (W, H)
            assert cv2.imread(str(out / split / img['file_name'])).shape == (H,
                                                                             W,
                                                                             3)
        ids = [a['id'] for a in coco.dataset['annotations']]
        assert len(ids) == len(set(ids))
        for ann in coco.dataset['annotations']:
            assert ann['category_id'] == 1 and ann['iscrowd'] == 0
            kp = np.array(ann['keypoints'], float)
            assert kp.shape == (51, )
            kp = kp.reshape(17, 3)
            v = kp[:, 2]
            assert set(v.tolist()) <= {0, 1, 2}
            assert ann['num_keypoints'] == np.count_nonzero(v > 0)
            assert np.all(kp[v == 0, :2] == 0)
            x, y, w, h = ann['bbox']
            assert w > 0 and h > 0 and ann['area'] > 0
            assert x >= 0 and y >= 0 and x + w <= W and y + h <= H
            assert ann['area'] <= w * h
            lab = kp[v > 0, :2]
            assert np.all((lab >= 0) & (lab <= [W - 1, H - 1]))
            margin = 2
            assert np.all((lab[:, 0] >= x - margin)
                          & (lab[:, 0] <= x + w + margin)
                          & (lab[:, 1] >= y - margin)
                          & (lab[:, 1] <= y + h + margin))
            # pycocotools turns the polygons into a mask (as mmpose does)
            assert coco.annToMask(ann).sum() > 0


def test_mmpose_cocodataset_loads_unchanged(dataset):
    CocoDataset = coco_dataset_cls()
    from mmpose.datasets.transforms import LoadImage
    out, _ = dataset
    anns = load_json(out / 'annotations/person_keypoints_train.json')
    anns = anns['annotations']

    ds = CocoDataset(
        data_root=str(out),
        ann_file='annotations/person_keypoints_train.json',
        data_prefix=dict(img='train/'),
        data_mode='topdown',
        test_mode=False,
        pipeline=[LoadImage()])
    assert len(ds) == sum(a['num_keypoints'] > 0 for a in anns)
    assert len(ds) > SPLITS['train']  # several people per image
    item = ds[0]
    assert item['img'].shape == (H, W, 3)
    assert item['keypoints'].shape == (1, 17, 2)
    assert item['flip_indices'] == COCO_LAYOUT.flip_indices

    # test mode with a detection file: false positives have low scores
    dets = load_json(out / 'person_detection_results/train_detections.json')
    bbox_file = str(out / 'person_detection_results/train_detections.json')
    kwargs = dict(
        data_root=str(out),
        ann_file='annotations/person_keypoints_train.json',
        data_prefix=dict(img='train/'),
        data_mode='topdown',
        test_mode=True,
        bbox_file=bbox_file,
        pipeline=[])
    assert len(CocoDataset(**kwargs)) == len(dets) > len(anns)
    filtered = CocoDataset(filter_cfg=dict(bbox_score_thr=0.5), **kwargs)
    assert len(filtered) == len(anns)
    assert all(filtered[i]['bbox_score'][0] >= 0.5
               for i in range(len(filtered)))


def test_occlusion_truncation_crowds_and_scales(generated):
    """Of the default, cluttered scenes."""
    out, _ = generated('cluttered')
    anns = all_annotations(out)
    v = np.array([a['keypoints'] for a in anns]).reshape(len(anns), 17, 3)
    v = v[..., 2]
    assert (v == 1).mean() > 0.03  # occluded but labelled
    assert (v == 0).mean() > 0.03  # truncated or turned away
    assert (v == 2).mean() > 0.4
    # truncation proper: a labelled-able body point lies outside the image
    boxes = np.array([a['bbox'] for a in anns])
    touching = ((boxes[:, 0] <= 0) | (boxes[:, 1] <= 0)
                | (boxes[:, 0] + boxes[:, 2] >= W)
                | (boxes[:, 1] + boxes[:, 3] >= H))
    assert touching.any()

    per_image = {}
    for a in anns:
        per_image.setdefault(a['image_id'], []).append(a['bbox'])
    assert max(len(b) for b in per_image.values()) >= 3
    assert min(len(b) for b in per_image.values()) == 1

    def overlap(a, b):
        return (min(a[0] + a[2], b[0] + b[2]) > max(a[0], b[0])
                and min(a[1] + a[3], b[1] + b[3]) > max(a[1], b[1]))

    assert any(
        overlap(a, b) for bs in per_image.values() for i, a in enumerate(bs)
        for b in bs[i + 1:])
    heights = boxes[:, 3]
    assert heights.max() / heights.min() > 2


def _diff_at(img, ref, pts, r=1):
    out = []
    for x, y in np.round(pts).astype(int):
        a = img[max(y - r, 0):y + r + 1, max(x - r, 0):x + r + 1].astype(int)
        b = ref[max(y - r, 0):y + r + 1, max(x - r, 0):x + r + 1].astype(int)
        out.append(np.abs(a - b).mean())
    return np.array(out)


def test_people_are_drawn_where_the_keypoints_are(dataset):
    """The saved JPEG differs from the scene's background (same noise, no
    people) at visible keypoints, but not at a shifted copy of them nor far
    away from every person."""
    out, _ = dataset
    data = load_json(out / 'annotations/person_keypoints_train.json')
    by_image = {}
    for a in data['annotations']:
        by_image.setdefault(a['image_id'], []).append(a)
    at_kpt, shifted, far = [], [], []
    for img_info in data['images']:
        image_id = img_info['id']
        scene = render_scene(SEED, image_id, (W, H), style=style_of(out))
        img = cv2.imread(str(out / 'train' / img_info['file_name']))
        kps = np.array([a['keypoints'] for a in by_image[image_id]])
        kps = kps.reshape(-1, 17, 3)
        np.testing.assert_allclose(kps, scene.keypoints, atol=0.01)
        vis = kps[kps[..., 2] == 2][:, :2]
        at_kpt.append(_diff_at(img, scene.background, vis))
        moved = vis + [W / 2, 0]
        moved[:, 0] %= W
        shifted.append(_diff_at(img, scene.background, moved))
        empty = cv2.erode((scene.part_map == 0).astype(np.uint8),
                          np.ones((9, 9), np.uint8))
        ys, xs = np.nonzero(empty)
        pick = np.linspace(0, len(xs) - 1, 50).astype(int)
        far.append(
            _diff_at(img, scene.background, np.stack([xs[pick], ys[pick]], 1)))
    at_kpt, shifted, far = map(np.concatenate, (at_kpt, shifted, far))
    assert len(at_kpt) > 100
    assert np.mean(at_kpt > 15) > 0.9
    assert np.mean(shifted > 15) < 0.5
    assert np.median(far) < 6


def test_clean_scenes_are_calmer_than_cluttered_ones():
    """The clean style (the TransPose quickstart's) draws no occluders and
    fewer background shapes, none of them limb-like bars: measured on the
    rendered background alone (no people) by its share of edge pixels, and
    on the part map by occluder pixels, over the same image ids."""
    ids = split_image_ids(SPLITS)['train']
    edges, occluded = {}, {}
    for style in ('cluttered', 'clean'):
        scenes = [render_scene(SEED, i, (W, H), style=style) for i in ids]
        edges[style] = np.mean([
            np.mean(cv2.Canny(scene.background, 100, 200) > 0)
            for scene in scenes
        ])
        occluded[style] = sum(
            bool((scene.part_map == -1).any()) for scene in scenes)
    assert occluded['clean'] == 0 < occluded['cluttered']
    # 6-19 shapes against 0-4, no bars: measured 0.38% of the background
    # pixels on edges against 2.36% over these 24 images; a third leaves
    # room for other seeds and library versions.
    assert edges['clean'] < edges['cluttered'] / 3


def test_custom_layout_reads_the_same_bodies():
    layout = SkeletonLayout(
        name='mini',
        names=('neck', 'left_wrist', 'right_wrist', 'pelvis'),
        skeleton=((0, 1), (0, 2), (0, 3)),
        flip_pairs=((1, 2), ),
        placement=((('left_shoulder', 0.5), ('right_shoulder', 0.5)),
                   (('left_wrist', 1.0), ), (('right_wrist',
                                              1.0), ), (('pelvis', 1.0), )))
    assert layout.flip_indices == [0, 2, 1, 3]
    assert layout.coco_category()['skeleton'] == [[1, 2], [1, 3], [1, 4]]
    coco = render_scene(SEED, 100005)
    mini = render_scene(SEED, 100005, layout=layout)
    assert np.array_equal(coco.image, mini.image)
    assert mini.keypoints.shape == (len(coco.boxes), 4, 3)
    np.testing.assert_array_equal(mini.keypoints[:, 1], coco.keypoints[:, 9])
    shoulders = coco.keypoints[:, 5:7]
    both = (shoulders[..., 2] > 0).all(1) & (mini.keypoints[:, 0, 2] > 0)
    np.testing.assert_allclose(
        mini.keypoints[both, 0, :2], shoulders[both, :, :2].mean(1), atol=0.02)

    with pytest.raises(ValueError, match='unknown anchors'):
        SkeletonLayout('bad', ('nose', 'tail'), (), ())
    with pytest.raises(ValueError, match='pair'):
        SkeletonLayout('bad', ('nose', ), ((0, 1), ), ())


def test_ensure_is_idempotent_and_removes_stale_files(tmp_path):
    """What tools/make_synthetic_data.py runs: it prints "wrote" when
    ``generated`` is true, else "up to date"."""
    out = tmp_path / 'data'
    _, generated = ensure_synthetic_coco(out, {'train': 4, 'val': 2}, seed=1)
    assert generated
    (out / 'notes.txt').write_text('mine')
    stamp = (out / 'train/100000.jpg').stat().st_mtime_ns

    _, generated = ensure_synthetic_coco(out, {'train': 4, 'val': 2}, seed=1)
    assert not generated
    assert (out / 'train/100000.jpg').stat().st_mtime_ns == stamp

    smaller = {'train': 2, 'val': 0}
    assert ensure_synthetic_coco(out, smaller, seed=1)[1]
    assert sorted(p.name for p in (out / 'train').iterdir()) == [
        '100000.jpg', '100001.jpg'
    ]
    assert not (out / 'val').exists()
    assert (out / 'notes.txt').read_text() == 'mine'
    params = load_json(out / 'generation.json')['params']
    assert params['splits'] == {'train': 2}  # 0 images: no split

    # another style is another generation
    _, generated = ensure_synthetic_coco(out, smaller, seed=1, style='clean')
    assert generated
    assert load_json(out / 'generation.json')['params']['style'] == 'clean'

    # an image deleted by hand is noticed
    (out / 'train/100001.jpg').unlink()
    assert ensure_synthetic_coco(out, smaller, seed=1)[1]
    assert (out / 'train/100001.jpg').is_file()


@pytest.mark.parametrize('bad, message', [
    (dict(splits={
        'train': -1,
        'val': 64
    }), "split 'train': -1 images"),
    (dict(seed=-3), 'seed must be a non-negative integer'),
    (dict(style='tidy'), 'style must be one of'),
    (dict(image_size=(10, 10)), 'image_size must be'),
    (dict(splits={
        'train': 0,
        'val': 0
    }), 'all splits have 0 images'),
])
def test_ensure_rejects_bad_parameters_before_writing(tmp_path, bad, message):
    args = {'splits': {'train': 320, 'val': 64}, **bad}
    with pytest.raises(ValueError, match=message):
        ensure_synthetic_coco(tmp_path / 'x', **args)
    assert not (tmp_path / 'x').exists()


@pytest.mark.slow
@pytest.mark.parametrize('bad', [['--train', '-1'], ['--train', 'many']])
def test_cli_rejects_bad_args_in_one_line(tmp_path, bad):
    """A parameter the generator refuses (the other bad parameters take
    the same path: the test above) and one argparse refuses."""
    result = run_tool(
        ['tools/make_synthetic_data.py', '--out',
         str(tmp_path / 'x')] + bad,
        timeout=120)
    assert result.returncode == 2
    assert result.stderr.count('\n') == 1 and 'error' in result.stderr
    assert not (tmp_path / 'x').exists()
