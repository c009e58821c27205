"""CycleGAN's two domains: radiograph-like projections and CT/MR slices, with held-out images of each."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.translation_domains import (
    HELD_OUT_ANGLES,
    TRAINING_ANGLES,
    ct_mr_domain,
    digitally_reconstructed_radiograph,
    head_ct_volume,
    held_out_domains,
    radiograph_domain,
)


@pytest.fixture(scope="module")
def volume() -> np.ndarray:
    return head_ct_volume(slices=16, size=32)


def test_a_drr_is_the_line_integral_of_attenuation_with_the_top_of_the_volume_first():
    water = np.full((4, 10, 10), -1000.0, np.float32)  # air
    water[:, 2:8, 2:8] = 0.0  # a water block 6 pixels deep
    water[3, 4:6, 4:6] = 1000.0  # bone (twice water's attenuation) in the top slice, 2 pixels deep
    drr = digitally_reconstructed_radiograph(water, 0.0)
    pixel_mm = 220.0 / 10
    assert drr.shape == (4, 10)
    assert drr[3, 3] == pytest.approx(6 * pixel_mm * 0.019, rel=1e-5)  # bottom slice: water only
    assert drr[0, 4] == pytest.approx((6 + 2) * pixel_mm * 0.019, rel=1e-5)  # top slice shown first
    assert drr[:, 0].max() == 0.0  # air projects to nothing


def test_domains_hold_radiographs_and_slices_and_never_the_held_out_ones(volume):
    radiographs = dict(radiograph_domain(volume))
    slices = dict(ct_mr_domain(volume))
    assert sum(name.startswith("drr/") for name in radiographs) == len(TRAINING_ANGLES)
    assert any(name.startswith("radiograph/") for name in radiographs)
    assert any(name.startswith("head-ct/") for name in slices) and any(name.startswith("dicom/") for name in slices)
    assert not any("CT_small" in name or "MR_small" in name for name in slices)
    held_out = held_out_domains(volume)
    assert set(held_out["B"]) == {"CT_small.dcm", "MR_small.dcm"}
    assert not set(held_out["A"]) & set(radiographs)
    assert not set(HELD_OUT_ANGLES) & set(TRAINING_ANGLES)
    for image in held_out["A"].values():
        assert not any(other.shape == image.shape and np.allclose(image, other) for other in radiographs.values())
    assert all(np.isfinite(image).all() and image.std() > 0 for image in [*radiographs.values(), *slices.values()])
