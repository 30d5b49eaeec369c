"""Hierarchical masking and masked convolution of SSpose's MAE pretraining,
on small randomly initialised models (no golden data needed)."""
import pytest
import torch
import torch.nn.functional as F

from sspose_mm.models.backbones.sspose_convvit import MaskedConvBlock
from sspose_mm.models.pretrainers.sspose_mae import (SSposeMAE, patchify,
                                                     random_masking,
                                                     unpatchify)

# Small but with the pose configuration's structure: strides 2/4/8, fusion
# before the transformer, 64x48 input -> 8x6 = 48 tokens.
TINY_BACKBONE = dict(
    type='SSposeConvViT',
    img_size=(64, 48),
    patch_sizes=(2, 2, 2),
    embed_dims=(8, 16, 24),
    depths=(1, 1, 2),
    num_heads=2,
    fusion='before_transformer')
TINY_DECODER = dict(embed_dims=16, depth=1, num_heads=2)


def tiny_mae(**kwargs) -> SSposeMAE:
    torch.manual_seed(0)
    return SSposeMAE(
        backbone=TINY_BACKBONE, decoder=TINY_DECODER, **kwargs).eval()


@pytest.mark.parametrize('num_tokens,ratio', [(196, 0.75), (48, 0.75),
                                              (192, 0.6), (7, 0.5), (10, 0.0)])
def test_mask_ratio_is_exact_in_every_sample(num_tokens, ratio):
    torch.manual_seed(1)
    ids_keep, ids_restore, mask = random_masking(5, num_tokens, ratio)
    num_keep = int(num_tokens * (1 - ratio))
    assert ids_keep.shape == (5, num_keep)
    assert mask.sum(dim=1).tolist() == [num_tokens - num_keep] * 5
    # The kept ids are exactly the unmasked positions, each once.
    for row_ids, row_mask in zip(ids_keep, mask):
        assert sorted(row_ids.tolist()) == torch.nonzero(
            row_mask == 0).flatten().tolist()
    # ids_restore undoes the shuffle: kept tokens come first.
    assert torch.equal(
        torch.gather(mask, 1, torch.argsort(ids_restore, 1))[:, :num_keep],
        torch.zeros(5, num_keep))


def test_mask_differs_between_samples_and_follows_the_noise():
    noise = torch.tensor([[0.3, 0.1, 0.9, 0.5], [0.9, 0.8, 0.1, 0.2]])
    ids_keep, _, mask = random_masking(2, 4, 0.5, noise)
    assert ids_keep.tolist() == [[1, 0], [2, 3]]
    assert mask.tolist() == [[0, 0, 1, 1], [1, 1, 0, 0]]


@pytest.mark.parametrize('bad', [-0.1, 1.0, 1.5])
def test_mask_ratio_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match='mask_ratio'):
        random_masking(1, 4, bad)


def test_mask_levels_are_aligned_and_keep_the_ratio():
    """Stage-1/2 masks are the token mask repeated in aligned blocks: the
    same ratio at every level, and each block is one token's cell."""
    model = tiny_mae()
    backbone = model.backbone
    torch.manual_seed(2)
    _, _, mask = random_masking(3, model.num_tokens, 0.75)
    visible = (1 - mask).reshape(3, *backbone.grid)  # (3, 8, 6)
    stage1, stage2 = backbone.visible_masks(visible)
    assert stage2.shape == (3, 1, 16, 12) and stage1.shape == (3, 1, 32, 24)
    for level, cell in ((stage2, 2), (stage1, 4)):
        assert torch.equal(level.mean(dim=(1, 2, 3)), visible.mean((1, 2)))
        # Constant inside each aligned cell x cell block, equal to the token.
        assert torch.equal(
            F.max_pool2d(level, cell), -F.max_pool2d(-level, cell))
        assert torch.equal(F.max_pool2d(level, cell)[:, 0], visible)


def test_masked_positions_cannot_influence_visible_outputs_of_a_block():
    torch.manual_seed(3)
    block = MaskedConvBlock(8).eval()
    x = torch.randn(2, 8, 12, 10)
    visible = (torch.rand(2, 1, 12, 10) > 0.5).float()
    changed = x + 5 * torch.randn_like(x) * (1 - visible)
    with torch.no_grad():
        out, out_changed = block(x, visible), block(changed, visible)
        unmasked_changed = block(changed)
    keep = visible.expand_as(out).bool()
    # Masked neighbours enter visible outputs only through the depthwise
    # conv, where they are exact zeros: bit-identical visible outputs.
    assert torch.equal(out[keep], out_changed[keep])
    # Without the mask the same change does reach visible outputs.
    assert not torch.allclose(block(x)[keep], unmasked_changed[keep])
    # And masked outputs do change (residual/MLP carry their own input).
    assert not torch.allclose(out[~keep], out_changed[~keep])


@pytest.mark.parametrize('hierarchical', [True, False])
def test_masked_pixels_cannot_influence_the_visible_latent(hierarchical):
    """Through the whole encoder (conv stages, fusion, transformer): with
    hierarchical masking the visible tokens depend on visible pixels only;
    masking the tokens alone (hierarchical_mask=False) leaks."""
    model = tiny_mae(hierarchical_mask=hierarchical)
    torch.manual_seed(4)
    images = torch.randn(2, 3, 64, 48)
    noise = torch.rand(2, model.num_tokens)
    _, _, mask = random_masking(2, model.num_tokens, 0.75, noise)
    pixel_mask = mask.reshape(2, 1, 8,
                              6).repeat_interleave(8,
                                                   2).repeat_interleave(8, 3)
    changed = images + 3 * torch.randn_like(images) * pixel_mask
    with torch.no_grad():
        latent = model.forward_encoder(images, noise)[0]
        latent_changed = model.forward_encoder(changed, noise)[0]
    assert latent.shape == (2, 12, 24)
    if hierarchical:
        # Not bitwise: the transformer's matmuls may block differently.
        torch.testing.assert_close(latent_changed, latent, rtol=0, atol=1e-6)
    else:
        assert (latent_changed - latent).abs().max() > 1e-3


def test_loss_counts_masked_patches_only():
    model = tiny_mae(norm_pix_loss=False)
    torch.manual_seed(5)
    images = torch.randn(2, 3, 64, 48)
    noise = torch.rand(2, model.num_tokens)
    with torch.no_grad():
        latent, mask, ids_restore = model.forward_encoder(images, noise)
        pred = model.decoder(latent, ids_restore)
    target = patchify(images, 8)
    # A perfect prediction on the masked patches gives zero loss, whatever
    # is predicted for the visible ones.
    perfect = torch.where(mask[..., None].bool(), target, pred)
    assert model.patch_loss(images, perfect, mask).item() == 0
    assert model.patch_loss(images, pred, mask).item() > 0


def test_patchify_round_trip_and_layout():
    images = torch.arange(
        2 * 3 * 16 * 8, dtype=torch.float).reshape(2, 3, 16, 8)
    patches = patchify(images, 4)
    assert patches.shape == (2, 8, 48)
    # Patch 1 is row 0, column 1; channel-last inside the patch.
    assert torch.equal(patches[0, 1, :3], images[0, :, 0, 4])
    assert torch.equal(unpatchify(patches, 4, (4, 2)), images)


def test_reconstruction_pastes_visible_patches():
    model = tiny_mae()
    images = torch.randn(2, 3, 64, 48)
    noise = torch.rand(2, model.num_tokens)
    parts = model.reconstruct(images, noise)
    _, _, mask = random_masking(2, model.num_tokens, 0.75, noise)
    visible = 1 - mask.reshape(2, 1, 8, 6).repeat_interleave(
        8, 2).repeat_interleave(8, 3)
    for name in ('masked', 'reconstruction', 'pasted'):
        assert parts[name].shape == images.shape
    torch.testing.assert_close(parts['pasted'] * visible, images * visible)
    assert torch.equal(parts['masked'], images * visible)
