"""tools/infer.py (``sspose_mm.apis.infer``): images, folders and videos in;
pictures, videos and COCO results out; bad input ends with one ``error:``
line.

The model is the quickstart config with its initial (untrained) weights, so
the tests check shapes, counts and geometry, never accuracy.
"""
import json

import cv2
import numpy as np
import pytest
import torch

from sspose_mm.apis.infer import (PersonBoxes, check_request,
                                  load_and_run_inference, print_summary,
                                  run_inference)
from sspose_mm.cli import run_cli
from sspose_mm.errors import ConfigError
from sspose_mm.synthetic import generate_synthetic_coco
from conftest import QUICKSTART_CONFIG, REPO, run_tool

CONFIG = str(QUICKSTART_CONFIG)
NUM_KEYPOINTS = 17
INPUT_W, INPUT_H = 96, 128  # the quickstart config's input size
HEATMAP_W = 24
PADDING = 1.25  # GetBBoxCenterScale padding of the quickstart config


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('infer')
    splits = generate_synthetic_coco(root / 'data', {'val': 3}, seed=0)
    return dict(
        root=root,
        **{
            k: str(v)
            for k, v in splits['splits']['val'].items() if k != 'num_images'
        })


@pytest.fixture(scope='module')
def model():
    from mmpose.apis import init_model
    torch.manual_seed(0)
    return init_model(CONFIG, None, device='cpu')


@pytest.fixture(scope='module')
def checkpoint(model, data):
    path = data['root'] / 'untrained.pth'
    torch.save({'state_dict': model.state_dict()}, path)
    return str(path)


@pytest.mark.slow
def test_single_image_with_bbox_cli(data, checkpoint, tmp_path):
    image = sorted(p for p in (data['root'] / 'data/val').iterdir())[0]
    box = (100.0, 40.0, 90.0, 170.0)
    out = tmp_path / 'out'
    result = run_tool([
        'tools/infer.py', CONFIG, checkpoint,
        str(image), '--bbox', *map(str, box), '--out-dir',
        str(out), '--device', 'cpu'
    ],
                      timeout=120)
    assert result.returncode == 0, result.stderr
    picture = cv2.imread(str(out / image.name))
    assert picture is not None
    assert picture.shape == cv2.imread(str(image)).shape
    # The drawing changed the picture (box and skeleton).
    assert np.abs(picture.astype(int) - cv2.imread(str(image))).max() > 50

    predictions = json.loads((out / 'predictions.json').read_text())
    assert len(predictions) == 1
    person = predictions[0]
    assert person['file_name'] == image.name
    assert person['category_id'] == 1 and person['image_id'] == 0
    assert person['bbox'] == pytest.approx(list(box), abs=0.01)
    kpts = np.array(person['keypoints']).reshape(NUM_KEYPOINTS, 3)
    assert person['score'] == pytest.approx(kpts[:, 2].mean(), abs=2e-4)
    # Keypoints lie in the crop around the box, whatever the weights. DARK's
    # Taylor step is unbounded where an untrained heatmap's log is flat (the
    # original does not clamp it either), so a few keypoints may be thrown
    # far out: the bulk and the median are what the geometry fixes.
    x, y, w, h = box
    aspect = INPUT_W / INPUT_H
    cw, ch = (w, w / aspect) if w > aspect * h else (h * aspect, h)
    cw, ch = cw * PADDING, ch * PADDING
    slack = 3 * cw / HEATMAP_W
    cx, cy = x + w / 2, y + h / 2
    inside = ((np.abs(kpts[:, 0] - cx) <= cw / 2 + slack) &
              (np.abs(kpts[:, 1] - cy) <= ch / 2 + slack))
    assert inside.sum() >= 0.8 * NUM_KEYPOINTS, kpts[~inside]
    assert abs(np.median(kpts[:, 0]) - cx) <= cw / 2
    assert abs(np.median(kpts[:, 1]) - cy) <= ch / 2


def test_folder_skips_a_corrupt_image_and_counts_it(data, checkpoint, tmp_path,
                                                    capsys):
    folder = tmp_path / 'images'
    folder.mkdir()
    names = sorted(p.name for p in (data['root'] / 'data/val').iterdir())
    for name in names:
        (folder / name).write_bytes(
            (data['root'] / 'data/val' / name).read_bytes())
    (folder / 'broken.jpg').write_bytes(b'not a jpeg at all')
    (folder / 'notes.txt').write_text('ignored: not an image')
    out = tmp_path / 'out'

    print_summary(
        load_and_run_inference(
            CONFIG, checkpoint, str(folder), str(out), device='cpu'))
    assert sorted(p.name for p in out.glob('*.jpg')) == names
    err = capsys.readouterr().err
    warnings = [
        line for line in err.splitlines()
        if line.startswith('warning: skipped')
    ]
    assert len(warnings) == 1 and 'broken.jpg' in warnings[0]
    assert warnings[0].startswith('warning: skipped 1 of 4 images')
    # The progress bar of a folder goes to stderr too.
    assert '3/4' in err or '4/4' in err
    # Whole image as the box: one person per image, running image ids.
    predictions = json.loads((out / 'predictions.json').read_text())
    assert [p['file_name'] for p in predictions] == names
    assert [p['image_id'] for p in predictions] == [0, 1, 2]
    h, w = cv2.imread(str(folder / names[0])).shape[:2]
    assert predictions[0]['bbox'] == [0, 0, w, h]
    assert all(len(p['keypoints']) == NUM_KEYPOINTS * 3 for p in predictions)


def test_detection_file_boxes(data, model, tmp_path):
    det_thr = 0.3
    dets = json.loads(open(data['bbox_file']).read())
    ann = json.loads(open(data['ann_file']).read())
    boxes = PersonBoxes(
        det_file=data['bbox_file'], ann_file=data['ann_file'], det_thr=det_thr)
    out = tmp_path / 'out'
    summary = run_inference(
        model, data['img_dir'], str(out), boxes, progress=False)
    assert summary.num_frames == 3 and not summary.skipped
    predictions = json.loads((out / 'predictions.json').read_text())
    kept = [d for d in dets if d['score'] > det_thr]
    # Not all detections pass the threshold, so the threshold is tested.
    assert 0 < len(kept) < len(dets)
    for image in ann['images']:
        expected = sorted(
            tuple(d['bbox']) for d in kept if d['image_id'] == image['id'])
        mine = [p for p in predictions if p['image_id'] == image['id']]
        assert all(p['file_name'] == image['file_name'] for p in mine)
        assert len(mine) == len(expected)
        got = sorted(tuple(p['bbox']) for p in mine)
        for a, b in zip(got, expected):
            assert a == pytest.approx(b, abs=0.02)
        scores = {
            round(d['score'], 4)
            for d in kept if d['image_id'] == image['id']
        }
        for p in mine:
            kpt_mean = np.mean(p['keypoints'][2::3])
            assert any(p['score'] == pytest.approx(kpt_mean * s, abs=2e-4)
                       for s in scores)


def test_video_in_video_out(data, model, tmp_path):
    images = sorted((data['root'] / 'data/val').iterdir())
    frames = [cv2.imread(str(images[i % len(images)])) for i in range(5)]
    height, width = frames[0].shape[:2]
    video = tmp_path / 'clip.mp4'
    writer = cv2.VideoWriter(
        str(video), cv2.VideoWriter_fourcc(*'mp4v'), 10.0, (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()

    out = tmp_path / 'out'
    summary = run_inference(
        model,
        str(video),
        str(out),
        PersonBoxes(bbox_xywh=(60, 30, 120, 200)),
        progress=False)
    assert summary.kind == 'video' and summary.num_frames == 5
    cap = cv2.VideoCapture(str(out / 'clip.mp4'))
    assert cap.isOpened()
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0)
    count = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        assert frame.shape[:2] == (height, width)
        count += 1
    cap.release()
    assert count == 5
    predictions = json.loads((out / 'predictions.json').read_text())
    assert [p['frame'] for p in predictions] == [0, 1, 2, 3, 4]
    assert [p['image_id'] for p in predictions] == [0, 1, 2, 3, 4]


def bad_inputs(root, data):
    (root / 'empty').mkdir(exist_ok=True)
    (root / 'notes.txt').write_text('text')
    (root / 'broken.png').write_bytes(b'')
    (root / 'broken.mp4').write_bytes(b'not a video')
    image = str(sorted((data['root'] / 'data/val').iterdir())[0])
    # input, PersonBoxes' arguments (tools/infer.py's box options), what
    # the error says
    return {
        'missing': (str(root / 'nothing.jpg'), {}, 'does not exist'),
        'unsupported': (str(root / 'notes.txt'), {}, 'not a supported file'),
        'empty folder': (str(root / 'empty'), {}, 'has no images'),
        'unreadable image': (str(root / 'broken.png'), {}, 'broken.png'),
        'unreadable video': (str(root / 'broken.mp4'), {}, 'broken.mp4'),
        'det without ann':
        (image, dict(det_file=data['bbox_file']), '--ann-file'),
        'bbox size': (image, dict(bbox_xywh=(10, 10, 0, 20)), 'non-positive'),
        'det on video':
        (str(root / 'broken.mp4'),
         dict(det_file=data['bbox_file'], ann_file=data['ann_file']), 'video'),
    }


@pytest.mark.parametrize('case', [
    'missing', 'unsupported', 'empty folder', 'unreadable image',
    'unreadable video', 'det without ann', 'bbox size', 'det on video'
])
def test_bad_input_exits_2_with_one_error_line(case, data, checkpoint,
                                               tmp_path, capsys):
    source, box_args, fragment = bad_inputs(tmp_path, data)[case]
    with pytest.raises(SystemExit) as stop:
        run_cli(lambda: load_and_run_inference(
            CONFIG,
            checkpoint,
            source,
            str(tmp_path / 'out'),
            PersonBoxes(**box_args),
            device='cpu'))
    assert stop.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith('error:')]
    assert len(errors) == 1 and fragment in errors[0], err
    assert 'Traceback' not in err


@pytest.fixture(scope='module')
def other_family(data):
    """A SHaRPose checkpoint: loading it in the quickstart config fails, so
    an error about the input shows the input was checked first."""
    from mmengine.config import Config
    from mmpose.registry import MODELS
    path = data['root'] / 'sharpose.pth'
    cfg = Config.fromfile(
        str(REPO / 'configs/sharpose/td-hm_sharpose-s-'
            'a0.5_2xb8-12e_synthetic-128x96.py'))
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict()}, path)
    return str(path)


def cli_error(checkpoint, source, out_dir, capsys, **box_args) -> str:
    """The one ``error:`` line of a tools/infer.py run that must stop (run
    as the tool runs it: through run_cli)."""
    with pytest.raises(SystemExit) as stop:
        run_cli(lambda: load_and_run_inference(
            CONFIG,
            checkpoint,
            str(source),
            str(out_dir),
            PersonBoxes(**box_args),
            device='cpu'))
    assert stop.value.code == 2
    errors = [
        line for line in capsys.readouterr().err.splitlines()
        if line.startswith('error:')
    ]
    assert len(errors) == 1, errors
    return errors[0]


@pytest.mark.parametrize('case', ['folder', 'image', 'symlinked folder'])
def test_out_dir_that_would_overwrite_the_inputs_is_refused(
        case, data, other_family, tmp_path, capsys):
    folder = tmp_path / 'photos'
    folder.mkdir()
    for path in (data['root'] / 'data/val').iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    originals = {p.name: p.read_bytes() for p in folder.iterdir()}
    first = sorted(folder.iterdir())[0]
    source, out_dir = {
        'folder': (folder, folder),
        'image': (first, folder),
        'symlinked folder': (folder, tmp_path / 'link'),
    }[case]
    if case == 'symlinked folder':
        out_dir.symlink_to(folder)
    error = cli_error(other_family, source, out_dir, capsys)
    assert 'would overwrite' in error and '--out-dir' in error
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == originals


def test_out_dir_inside_the_input_folder_leaves_the_originals(
        data, checkpoint, tmp_path):
    folder = tmp_path / 'photos'
    folder.mkdir()
    for path in (data['root'] / 'data/val').iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    originals = {p.name: p.read_bytes() for p in folder.glob('*.jpg')}
    load_and_run_inference(
        CONFIG,
        checkpoint,
        str(folder),
        str(folder / 'drawn'),
        device='cpu',
        progress=False)
    assert {p.name: p.read_bytes() for p in folder.glob('*.jpg')} == \
        originals
    assert sorted(p.name for p in (folder / 'drawn').glob('*.jpg')) == \
        sorted(originals)


def test_bbox_off_the_image_is_refused_before_the_model_loads(
        data, other_family, tmp_path, capsys):
    image = sorted((data['root'] / 'data/val').iterdir())[0]
    height, width = cv2.imread(str(image)).shape[:2]
    error = cli_error(
        other_family,
        image,
        tmp_path / 'out',
        capsys,
        bbox_xywh=(width + 10, 5, 20, 20))
    assert error == (f'error: --bbox {width + 10} 5 20 20 lies outside the '
                     f'image {image} ({width}x{height} pixels).')
    assert not (tmp_path / 'out').exists()


def test_bbox_off_some_images_of_a_folder_skips_them(model, tmp_path):
    folder = tmp_path / 'mixed'
    folder.mkdir()
    cv2.imwrite(
        str(folder / 'large.png'), np.full((200, 160, 3), 90, np.uint8))
    cv2.imwrite(str(folder / 'small.png'), np.full((40, 30, 3), 90, np.uint8))
    boxes = PersonBoxes(bbox_xywh=(60, 80, 50, 100))
    summary = run_inference(
        model, str(folder), str(tmp_path / 'out'), boxes, progress=False)
    assert [p['file_name'] for p in summary.predictions] == ['large.png']
    assert summary.skipped == [(str(folder / 'small.png'),
                                '--bbox outside the image')]
    with pytest.raises(ConfigError, match='lies outside every image'):
        check_request(
            str(folder), PersonBoxes(bbox_xywh=(300, 0, 9, 9)),
            str(tmp_path / 'out'))
