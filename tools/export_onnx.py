"""Export a top-down pose model to ONNX and check it with onnxruntime.

    python tools/export_onnx.py CONFIG CHECKPOINT OUT.onnx [--dynamic-batch]
        [--input HxW] [--with-decode] [--batch 1] [--threads T] [--repeat 3]

CHECKPOINT must fit the config's model exactly (else it stops, saying what
the file looks like); "none" exports untrained weights, e.g. to try it. The
graph takes ``input``: normalised RGB crops ``(B, 3, H, W)`` (the data
preprocessor's mean/std are not part of it) and gives ``heatmaps``
``(B, K, H', W')``; with --with-decode also ``keypoints`` ``(B, K, 2)`` in
crop pixels and ``scores`` ``(B, K)``. Position encodings are computed for
the exported H x W, which the graph then requires; B is fixed to --batch
unless --dynamic-batch. After export, onnxruntime (CPU) is run on random
crops and must match PyTorch; both speeds are printed.
"""
import sspose_mm  # noqa: F401  isort: skip (mmpose importable first)
import argparse
import copy
import os.path as osp
import sys
from typing import List, Optional

import torch

from sspose_mm.apis.export import build_exported, export_onnx, verify
from sspose_mm.apis.fast_inference import (model_input_size,
                                           prepare_for_inference)
from sspose_mm.apis.loading import check_model_files, init_model
from sspose_mm.benchmarks.core import interleaved_times, parse_size
from sspose_mm.cli import run_cli
from sspose_mm.errors import ConfigError, UserError


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.split('\n')[5:]))
    parser.add_argument('config')
    parser.add_argument('checkpoint', help='weights, or "none"')
    parser.add_argument('out', help='the .onnx file to write')
    parser.add_argument(
        '--dynamic-batch',
        action='store_true',
        help='any batch size (else fixed to --batch)')
    parser.add_argument(
        '--input',
        type=parse_size,
        metavar='HxW',
        help="crop size (default: the config's)")
    parser.add_argument(
        '--with-decode',
        action='store_true',
        help='also output keypoints and scores (argmax)')
    parser.add_argument(
        '--batch',
        type=int,
        default=1,
        help='batch size exported, checked and timed (default: 1)')
    parser.add_argument(
        '--repeat',
        type=int,
        default=3,
        help='timed calls per speed (default: 3)')
    parser.add_argument(
        '--threads',
        type=int,
        default=torch.get_num_threads(),
        help='CPU threads of both runtimes when timing (default: %(default)s)')
    parser.add_argument('--opset', type=int, default=18)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    try:
        import onnxruntime
    except ImportError:
        raise UserError('onnx export needs the deploy extra: pip install -r '
                        'requirements/deploy.txt (or -e .[deploy]).') from None
    check_model_files(args.config, args.checkpoint)
    for name, value in (('--batch', args.batch), ('--threads', args.threads)):
        if value < 1:
            raise ConfigError(f'{name} must be at least 1, got {value}.')
    model = init_model(args.config, args.checkpoint, device='cpu')
    size = args.input or model_input_size(model, model.cfg)
    pytorch_fast = prepare_for_inference(copy.deepcopy(model), size)
    exported = build_exported(model, size, args.with_decode)
    generator = torch.Generator().manual_seed(0)
    crops = torch.randn(args.batch, 3, *size, generator=generator)
    print(
        f'exporting {osp.basename(args.config)} at {size[0]}x{size[1]}, '
        f'batch {"dynamic" if args.dynamic_batch else args.batch} ...',
        file=sys.stderr)
    outputs = export_onnx(exported, crops, args.out, args.dynamic_batch,
                          args.opset)
    torch.set_num_threads(args.threads)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = args.threads
    # Idle onnxruntime threads otherwise spin on the cores for a while and
    # slow down whatever runs next (here: the PyTorch timing).
    options.add_session_config_entry('session.intra_op.allow_spinning', '0')
    session = onnxruntime.InferenceSession(
        args.out, options, providers=['CPUExecutionProvider'])
    checks = [crops]
    if args.dynamic_batch:
        checks.append(
            torch.randn(args.batch + 1, 3, *size, generator=generator))
    for batch in checks:
        difference = verify(session, exported, batch)
        print(f'onnxruntime matches PyTorch at batch {len(batch)}: max '
              f'|diff| {difference:.1e} of max |heatmap|')
    feed = {'input': crops.numpy()}
    calls = dict(
        pytorch=lambda: pytorch_fast(crops, None, mode='tensor'),
        onnxruntime=lambda: session.run(None, feed))
    # Interleaved, so that other load on the machine hits both alike.
    with torch.no_grad():
        seconds = interleaved_times(calls, repeat=args.repeat, label='speed')
    torch_rate, ort_rate = (
        args.batch / seconds[k] for k in ('pytorch', 'onnxruntime'))
    print(f'wrote {args.out} (outputs: {", ".join(outputs)}; '
          f'{osp.getsize(args.out) / 2**20:.1f} MiB)')
    print(f'speed at batch {args.batch}, {torch.get_num_threads()} threads: '
          f'onnxruntime {ort_rate:.2f} crops/s, PyTorch fast path '
          f'{torch_rate:.2f} crops/s')


if __name__ == '__main__':
    run_cli(main)
