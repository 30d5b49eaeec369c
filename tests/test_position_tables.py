"""Reading a checkpoint's position table on its grid (``stored_grid``),
shared by SHaRPose's pretrained-ViT loader and SSpose's encoder: a ViT
table of the model's aspect ratio (e.g. MAE/ViTPose pretrained at 256x192,
a class token and 16x12 positions) now loads into SHaRPose, which read
square grids only; squares are still read first (the tables both read
before keep their reading), and SSpose still refuses a class-token table
(no such table is its own)."""
import pytest
import torch
import torch.nn.functional as F

from sspose_mm.models.utils import stored_grid
from test_sharpose_pretrained import C, load, synthetic_mae


@pytest.mark.parametrize(
    'positions,grid,class_token,expected',
    [
        (16, (4, 3), False, (0, (4, 4))),  # square
        (192, (8, 6), False, (0, (16, 12))),  # the model's aspect ratio
        (17, (4, 3), True, (1, (4, 4))),  # class token + square
        (1 + 192, (4, 3), True, (1, (16, 12))),  # class token + 4:3
        (1 + 48, (4, 3), True, (0, (7, 7))),  # 7 x 7 read first
        (17, (4, 3), False, None),  # a class token where none may be
        (15, (4, 3), True, None),  # no grid at all
    ])
def test_stored_grid(positions, grid, class_token, expected):
    assert stored_grid(positions, grid, class_token) == expected


def test_sharpose_loads_a_table_of_its_aspect_ratio(tmp_path):
    """The tiny backbone's grids are 4x3 and 8x6; a ViT table of 16x12
    positions after its class token is resized from 16x12, not refused."""
    weights, _ = synthetic_mae('mae')
    table = torch.randn(
        1, 1 + 16 * 12, C, generator=torch.Generator().manual_seed(1))
    weights['pos_embed'] = table
    path = tmp_path / 'vit.pth'
    torch.save({'model': weights}, path)
    ours = load(path).state_dict()
    grid = table[:, 1:].reshape(1, 16, 12, C).permute(0, 3, 1, 2)
    for stage, size in enumerate(((4, 3), (8, 6))):
        resized = F.interpolate(
            grid, size=size, mode='bicubic', align_corners=False)
        # The same bicubic interpolation, through timm's
        # resample_abs_pos_embed: assert_close's float32 default tolerance.
        torch.testing.assert_close(ours[f'pos_embed_list.{stage}'],
                                   resized.flatten(2).transpose(1, 2))
