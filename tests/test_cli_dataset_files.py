"""The pre-flight file checks resolve a dataset's files as mmengine does
and treat an evaluator's annotation file as a dataset's."""
import pytest

from sspose_mm.cli import load_config
from sspose_mm.cli.checks import dataset_files, dataset_metainfo
from sspose_mm.errors import DataError
from conftest import COCO, QUICKSTART_CONFIG, coco_excerpt_options


def test_files_are_joined_to_the_data_root_unless_absolute():
    leaf = dict(
        data_root='data/coco',
        ann_file='annotations/val.json',
        bbox_file='dets.json',
        data_prefix=dict(img='/images/val2017/'))
    assert dataset_files(leaf) == dict(
        ann_file='data/coco/annotations/val.json',
        bbox_file='dets.json',
        img_dir='/images/val2017/')
    assert dataset_files(dict(ann_file='/abs/val.json')) == dict(
        ann_file='/abs/val.json', bbox_file='', img_dir='')


def test_an_empty_evaluator_annotation_file_is_named(tmp_path):
    empty = tmp_path / 'empty.json'
    empty.write_bytes(b'')
    options = dict(coco_excerpt_options(),
                   **{'val_evaluator.ann_file': str(empty)})
    with pytest.raises(
            DataError,
            match=f'annotation file "{empty}" of val_evaluator.ann_file is '
            r'empty \(0 bytes\)'):
        load_config(str(QUICKSTART_CONFIG), options, phases=['val'])
    # The same config with the excerpt's file passes.
    options['val_evaluator.ann_file'] = str(COCO / 'test_coco.json')
    load_config(str(QUICKSTART_CONFIG), options, phases=['val'])


def test_a_layout_naming_an_unknown_swap_partner_is_one_line(tmp_path):
    # MMPose's own parser raises a bare KeyError('elbow') for this file.
    layout = tmp_path / 'layout.py'
    layout.write_text(
        'dataset_info = dict(dataset_name="two", keypoint_info={\n'
        '    0: dict(name="a", id=0, color=[0, 0, 0], type="upper",'
        ' swap="b"),\n'
        '    1: dict(name="b", id=1, color=[0, 0, 0], type="upper",'
        ' swap="elbow")},\n'
        '    skeleton_info={}, joint_weights=[1., 1.], sigmas=[.1, .1])\n')
    leaf = dict(type='CocoDataset', metainfo=dict(from_file=str(layout)))
    with pytest.raises(
            DataError, match=r"cannot be read by MMPose "
            r"\(KeyError: 'elbow'\)") as caught:
        dataset_metainfo(leaf)
    assert str(layout) in str(caught.value)
