from __future__ import annotations

import pytest
import torch

from fluxmusic.model import image_ids, pack, text_ids, unpack


def test_packing_matches_reference(golden_tiny: dict) -> None:
    latent = golden_tiny["prepare.latent"]
    assert torch.equal(pack(latent), golden_tiny["prepare.img"])
    b, _, t_lat, f_lat = latent.shape
    assert torch.equal(image_ids(b, t_lat, f_lat), golden_tiny["prepare.img_ids"])
    assert torch.equal(text_ids(b, 7), golden_tiny["prepare.txt_ids"])


def test_feature_order_is_c_ph_pw() -> None:
    latent = torch.arange(2 * 2 * 2, dtype=torch.float32).reshape(1, 2, 2, 2)
    tokens = pack(latent)
    assert tokens.shape == (1, 1, 8)
    # feature index c * 4 + ph * 2 + pw
    assert tokens[0, 0].tolist() == [
        latent[0, c, ph, pw].item() for c in range(2) for ph in range(2) for pw in range(2)
    ]


@pytest.mark.parametrize("t_lat,f_lat", [(256, 16), (128, 16), (2, 2), (14, 6)])
def test_unpack_inverts_pack(t_lat: int, f_lat: int) -> None:
    latent = torch.randn(3, 8, t_lat, f_lat)
    tokens = pack(latent)
    assert tokens.shape == (3, t_lat * f_lat // 4, 32)
    assert torch.equal(unpack(tokens, t_lat, f_lat), latent)


def test_ids_are_row_major_time_then_mel() -> None:
    ids = image_ids(1, 256, 16)
    assert ids.shape == (1, 1024, 3)
    assert ids[0, 8].tolist() == [0.0, 1.0, 0.0]
    assert ids[0, 7].tolist() == [0.0, 0.0, 7.0]
    assert ids[0, -1].tolist() == [0.0, 127.0, 7.0]


def test_odd_sizes_rejected_with_fix() -> None:
    with pytest.raises(ValueError, match="multiples of the patch size 2"):
        pack(torch.randn(1, 8, 5, 16))
    with pytest.raises(ValueError, match="multiples of the patch size 4"):
        image_ids(1, 126, 16, patch=4)
    with pytest.raises(ValueError, match="positive"):
        pack(torch.randn(1, 8, 4, 4), patch=0)


def test_patch_four_packs_blocks_of_four_by_four() -> None:
    latent = torch.randn(2, 8, 128, 16)
    tokens = pack(latent, 4)
    assert tokens.shape == (2, 32 * 4, 8 * 16)
    # token (row 1, column 2) holds latent[:, c, 4:8, 8:12], features ordered c * 16 + pt * 4 + pf
    block = latent[:, :, 4:8, 8:12].reshape(2, 128)
    assert torch.equal(tokens[:, 1 * 4 + 2], block)
    assert torch.equal(unpack(tokens, 128, 16, 4), latent)
    ids = image_ids(2, 128, 16, patch=4)
    assert ids.shape == (2, 128, 3)
    assert ids[0, 1 * 4 + 2].tolist() == [0.0, 1.0, 2.0]
    assert ids[0, -1].tolist() == [0.0, 31.0, 3.0]
