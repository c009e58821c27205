"""The shipped models' training pool never holds a held-out image, under its own name or another."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from trainer.training_pool import (
    dead_leaves,
    held_out_images,
    is_held_out,
    normalised,
    photo_variants,
    piecewise_constant_phantom,
    pool_images,
    simulated_radiograph,
    skimage_images,
    textured_dead_leaves,
    textured_phantom,
    write_training_pool,
)


@pytest.fixture(scope="module")
def small_pool():
    return dict(pool_images(phantoms=2, radiographs=2, flat_phantoms=2, leaves=2, textured_leaves=2, size=64))


def test_held_out_images_are_the_benchmarks_six():
    images = held_out_images()
    assert list(images) == [
        "camera (centre 256)",
        "moon (centre 256)",
        "coins",
        "Shepp-Logan phantom",
        "CT_small.dcm",
        "MR_small.dcm",
    ]
    assert images["CT_small.dcm"].min() < -500  # modality units (HU), not stored values


def test_no_pool_image_holds_held_out_pixels(small_pool):
    from skimage import data

    references = [*held_out_images().values(), data.camera(), data.moon()]
    assert not any(is_held_out(image, references) for image in small_pool.values())
    assert not any(
        word in name for name in small_pool for word in ("camera", "moon", "coins", "shepp", "CT_small", "MR_small")
    )
    # The pixel guard itself: pydicom's big-endian MR_small (another name, byte order) is recognised.
    import pydicom
    from pydicom.data import get_testdata_file

    big_endian = pydicom.dcmread(get_testdata_file("MR_small_bigendian.dcm"))
    assert is_held_out(pydicom.pixels.apply_modality_lut(big_endian.pixel_array, big_endian), references)


def test_pool_draws_on_every_allowed_source(small_pool):
    sources = {name.split("/")[0] for name in small_pool}
    assert sources == {"skimage", "dicom", "head-ct", "phantom", "radiograph"}
    assert sum(name.startswith("dicom/") for name in small_pool) >= 10
    assert all(min(image.shape) >= 64 and image.ndim == 2 for image in small_pool.values())
    assert sum(name.startswith("phantom/leaves-") for name in small_pool) == 2
    assert sum(name.startswith("phantom/textured-leaves-") for name in small_pool) == 2
    assert "skimage/motorcycle_left" in small_pool and "skimage/motorcycle_left-half" in small_pool


def test_photo_variants_are_colour_planes_and_a_smaller_scale_of_allowed_photographs():
    """Pool v6's extra views: the red, green and blue planes of each colour photograph, each a different grey
    image of the same scene, and every photograph at 0.7 scale; none is a held-out image."""
    from skimage import data

    variants = dict(photo_variants())
    astronaut = data.astronaut()
    red, green = variants["skimage-variants/astronaut-r"], variants["skimage-variants/astronaut-g"]
    assert np.array_equal(red, astronaut[..., 0].astype(np.float32)) and not np.array_equal(red, green)
    assert "skimage-variants/brick-r" not in variants  # grey photographs have no planes
    smaller = variants["skimage-variants/brick-0.7"]
    assert smaller.shape == tuple(round(0.7 * side) for side in data.brick().shape)
    assert abs(float(smaller.mean()) - float(data.brick().mean())) < 1.0  # the same content, resampled
    assert "skimage-variants/motorcycle_left-0.7" in variants
    # Pool v7: the colour planes at 0.7 and half size as well, resampled from the same plane.
    more = dict(photo_variants(plane_scales=(1.0, 0.7, 0.5)))
    assert set(more) - set(variants) == {
        f"{name}-{suffix}" for name in variants if name[-2:] in ("-r", "-g", "-b") for suffix in ("0.7", "half")
    }
    assert more["skimage-variants/astronaut-r-half"].shape == (256, 256)
    assert more["skimage-variants/astronaut-r-0.7"].shape == (358, 358)
    # Pool v8: the grey photographs at 0.85 and 0.6 too, and the planes at those scales; 0.7 stays the same.
    v8 = dict(photo_variants(plane_scales=(1.0, 0.85, 0.7, 0.6, 0.5), photo_scales=(0.85, 0.7, 0.6)))
    assert set(more) < set(v8)
    assert np.array_equal(v8["skimage-variants/brick-0.7"], smaller)
    assert v8["skimage-variants/brick-0.85"].shape == tuple(round(0.85 * side) for side in data.brick().shape)
    assert v8["skimage-variants/astronaut-g-0.6"].shape == (307, 307)
    assert "skimage-variants/brick-r-0.85" not in v8
    assert not any(word in name for name in variants for word in ("camera", "moon", "coins", "shepp"))
    # Only pool v6 asks for them: the v4 defaults stay as they were.
    names = {name for name, _ in pool_images(phantoms=0, radiographs=0, flat_phantoms=0, leaves=0, textured_leaves=0)}
    with_variants = {
        name
        for name, _ in pool_images(
            phantoms=0, radiographs=0, flat_phantoms=0, leaves=0, textured_leaves=0, variants=True
        )
    }
    assert not any(name.startswith("skimage-variants/") for name in names)
    assert with_variants - names == set(variants)


def test_earlier_pools_stay_reproducible():
    """Pool v3 (what the shipped denoiser's fourth stage trained on) is the defaults without v4's additions,
    and its dead leaves are the same pixels as when it was written (pinned from that commit)."""
    names = {
        name
        for name, _ in pool_images(
            phantoms=1, radiographs=1, flat_phantoms=1, leaves=1, textured_leaves=0, motorcycle=False, size=64
        )
    }
    assert not any("motorcycle" in name or "textured-leaves" in name for name in names)
    leaves = dead_leaves(64, 3)  # a rasterised, unblurred one: exact arithmetic only
    assert float(leaves.astype(np.float64).sum()) == pytest.approx(1932.1003693360835, abs=1e-9)
    assert leaves[10, 10] == np.float32(0.13874171674251556)


def test_dead_leaves_have_hard_edges_of_every_contrast():
    images = [dead_leaves(128, seed) for seed in range(8)]
    assert np.array_equal(images[0], dead_leaves(128, 0)) and not np.array_equal(images[0], images[1])
    assert all(0.0 <= image.min() and image.max() <= 1.0 for image in images)
    steps = [np.abs(np.diff(image, axis=1)) for image in images]
    # Rasterised ones: flat leaves (most neighbours equal) with near full-range jumps at their edges...
    assert any(np.mean(step < 1e-6) > 0.7 and step.max() > 0.9 for step in steps)
    # ...and the blurred ones keep no exactly flat run of pixels worth the name.
    assert any(np.mean(step < 1e-6) < 0.1 for step in steps)


def test_textured_dead_leaves_carry_gratings_noise_and_photograph_crops():
    photos = [normalised(image) for _, image in skimage_images()]
    images = [textured_dead_leaves(128, seed, photos) for seed in range(8)]
    assert np.array_equal(images[0], textured_dead_leaves(128, 0, photos))
    assert all(0.0 <= image.min() and image.max() <= 1.0 for image in images)
    flat_share = [np.mean(np.abs(np.diff(image, axis=1)) < 1e-6) for image in images]
    plain_share = [np.mean(np.abs(np.diff(dead_leaves(128, seed), axis=1)) < 1e-6) for seed in range(8)]
    assert np.mean(flat_share) < 0.6 * np.mean(plain_share)  # most leaves are no longer flat
    # The photographs are used: without them the same seed draws other textures.
    assert not np.array_equal(images[1], textured_dead_leaves(128, 1, []))
    assert all(0.0 <= image.min() and image.max() <= 1.0 for image in (textured_dead_leaves(128, 1, []),))


def test_generated_images_are_deterministic_and_varied():
    assert np.array_equal(textured_phantom(64, 3), textured_phantom(64, 3))
    assert not np.array_equal(textured_phantom(64, 3), textured_phantom(64, 4))
    flat = piecewise_constant_phantom(64, 2)
    assert np.array_equal(flat, piecewise_constant_phantom(64, 2))
    assert np.mean(np.abs(np.diff(flat, axis=1)) < 1e-6) > 0.8  # flat almost everywhere
    radiograph = simulated_radiograph(64, 1)
    assert np.array_equal(radiograph, simulated_radiograph(64, 1)) and 0 <= radiograph.min() < radiograph.max() <= 1


def test_pool_is_written_as_sixteen_bit_pngs(tmp_path, monkeypatch):
    import trainer.training_pool as training_pool

    monkeypatch.setattr(training_pool, "pool_images", lambda **_: iter([("phantom/a", textured_phantom(64, 0))]))
    (path,) = write_training_pool(tmp_path)
    pixels = np.asarray(Image.open(path))
    assert path == tmp_path / "phantom" / "a.png" and pixels.dtype == np.uint16
    assert pixels.min() == 0 and pixels.max() == 65535
