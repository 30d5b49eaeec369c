"""The ``pipeline`` benchmark suite: its time accounting (on a fake clock),
its stock pipelines, and a tiny real run. Nothing here asserts a speed."""
import argparse
from typing import Optional

import pytest
from mmengine.config import Config
from mmengine.dataset import Compose, base_dataset
from mmengine.registry import init_default_scope
from mmpose.registry import KEYPOINT_CODECS, TRANSFORMS

from sspose_mm.benchmarks import pipeline
from sspose_mm.benchmarks.core import (Report, format_suite_list,
                                       get_benchmark, interleaved_medians)
from conftest import QUICKSTART_CONFIG, REPO


class FakeClock:
    """``time.process_time`` advanced only by the fake work below."""

    def __init__(self) -> None:
        self.now = 0.

    def __call__(self) -> float:
        return self.now


class FakeDataset:
    """``prepare_data`` as MMPose's datasets do it: 0.5 s of its own work
    (reading the annotation), then the pipeline; each transform costs the
    seconds given, and drops the sample where the cost is None."""

    ann_file = 'fake.json'

    def __init__(self, clock: FakeClock, costs: list) -> None:
        self.clock = clock
        self.pipeline = Compose([self.transform(cost) for cost in costs])

    def transform(self, cost: Optional[float]):

        def run(data: dict) -> Optional[dict]:
            self.clock.now += cost or 0.
            return None if cost is None else data

        return run

    def prepare_data(self, index: int) -> dict:
        self.clock.now += 0.5
        return self.pipeline(dict(index=index))


def test_split_times_each_transform_and_the_dataset_work(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(pipeline.time, 'process_time', clock)
    dataset = FakeDataset(clock, [1., 2., 4.])
    compose = dataset.pipeline
    split = pipeline.split_pass(dataset, ['a', 'b', 'c'], [0, 1, 0])()
    assert split == {pipeline.DATA_INFO: 1.5, 'a': 3., 'b': 6., 'c': 12.}
    assert dataset.pipeline is compose  # given back
    whole = pipeline.whole_pass(dataset, [0, 1, 0])()
    assert whole == {'whole': sum(split.values())}


def test_a_dropped_sample_stops_the_measurement(monkeypatch):
    """A skipped image would time less work than a sample: an error."""
    clock = FakeClock()
    monkeypatch.setattr(pipeline.time, 'process_time', clock)
    dataset = FakeDataset(clock, [1., None])
    with pytest.raises(RuntimeError, match='dropped sample 3 of fake.json'):
        pipeline.whole_pass(dataset, [3])()


def test_interleaved_medians_skip_the_warmup_round():
    values = iter([100., 3., 1., 2.])
    calls = {'c': lambda: {'t': next(values)}}
    assert interleaved_medians(calls, warmup=1, repeat=3) == {'c': {'t': 2.}}


def modules(step: dict) -> list:
    """Where the classes of a pipeline step (and its codec) come from."""
    found = [TRANSFORMS.get(step['type']).__module__]
    if step['type'] == 'GenerateTarget':
        found += [
            KEYPOINT_CODECS.get(codec['type']).__module__
            for codec in encoders(step)
        ]
    return found


def encoders(step: dict) -> list:
    """The codec configs of a GenerateTarget step."""
    codecs = step['encoder']
    return [codecs] if isinstance(codecs, dict) else list(codecs)


@pytest.mark.parametrize(
    'config', pipeline.DEFAULT_CONFIGS +
    ('configs/higherpose/ae_higherpose-w32_2xb8-4e_synthetic-128x128.py', ))
def test_stock_pipeline_runs_only_mmpose_transforms_and_codecs(config):
    """Every transform and codec of ours is replaced by MMPose's, with the
    same sizes and random laws' bounds; MMPose's own steps stay."""
    cfg = Config.fromfile(REPO / config)
    init_default_scope('mmpose')
    ours = list(pipeline.training_dataset_cfg(cfg).pipeline)
    stock = pipeline.stock_pipeline(ours)
    assert len(stock) == len(ours)
    for ours_step, step in zip(ours, stock):
        assert all(m.startswith('mmpose.') for m in modules(step)), step
        if all(m.startswith('mmpose.') for m in modules(ours_step)):
            assert step == ours_step
        elif step['type'] == 'GenerateTarget':
            # The same targets: sizes and sigma, at each resolution.
            codec = ours_step['encoder']
            sizes = [codec['heatmap_size']] + list(
                codec.get('higher_heatmap_sizes', []))
            assert [c['heatmap_size'] for c in encoders(step)] == sizes
            for stock_codec in encoders(step):
                assert stock_codec['input_size'] == codec['input_size']
                assert stock_codec['sigma'] == codec['sigma']
        TRANSFORMS.build(step)
    if any(s['type'] == 'ClippedRandomBBoxTransform' for s in ours):
        (box, ) = [s for s in stock if s['type'] == 'RandomBBoxTransform']
        clipped = TRANSFORMS.build(
            next(s for s in ours if s['type'] == 'ClippedRandomBBoxTransform'))
        assert box['rotate_factor'] == clipped.rotate_factor
        assert box['scale_factor'] == clipped.scale_factor


@pytest.mark.parametrize('config, codecs', [
    (QUICKSTART_CONFIG,
     ['TransPoseHeatmap', 'UDPHeatmap', 'MSRAHeatmap, unbiased']),
    (REPO /
     'configs/higherpose/ae_higherpose-w32_2xb8-4e_synthetic-128x128.py',
     ['MultiResolutionAssociativeEmbedding', 'AssociativeEmbedding x2'])
])
def test_suite_reports_rates_and_a_split_that_adds_up(config, codecs,
                                                      monkeypatch):
    """Both sources, 2 samples, 3 timed rounds. The split (one pass, timed
    transform by transform) and the whole pipeline (another pass, the same
    random draws) are separate measurements of the same work."""
    # mmengine collects garbage after storing a dataset's annotations: in a
    # test process full of objects that takes seconds per dataset, and it
    # frees nothing that the timed passes use.
    monkeypatch.setattr(base_dataset.gc, 'collect', lambda: 0)
    args = argparse.Namespace(
        config=str(config), batch=2, repeat=3, input=None, threads=1)
    report = Report(live=False)
    get_benchmark('pipeline')(args, report)
    assert len(report.sections) == 2  # COCO excerpt, synthetic images
    num_steps = len(
        pipeline.training_dataset_cfg(Config.fromfile(config)).pipeline)
    for section in report.sections:
        rows = {row.what: row for row in section.rows}
        for variant in ('ours', 'stock'):
            rate = rows[f'{variant}: samples/s per worker'].value
            whole = rows[f'{variant}: whole pipeline'].value
            assert rate == pytest.approx(1000 / whole)
            steps = [
                row.value for row in section.rows
                if row.what.startswith(f'{variant} step: ')
            ]
            assert len(steps) == num_steps + 1 and min(steps) > 0
            assert rows[f'{variant}: sum of steps'].value == pytest.approx(
                sum(steps))
        assert rows['speed-up, ours / stock'].value == pytest.approx(
            rows['stock: whole pipeline'].value /
            rows['ours: whole pipeline'].value)
        assert [
            row.what for row in section.rows if row.what.startswith('encode')
        ] == [f'encode: GenerateTarget({codec})' for codec in codecs]


def test_suite_is_listed():
    assert 'pipeline                 samples/s per data-loading worker' in (
        format_suite_list())
