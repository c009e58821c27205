"""The image pool the shipped models were trained on, and the held-out images that give every published figure.

Only sources that ship with our dependencies or that we generate are used: scikit-image's bundled images,
the images inside pydicom's test data, and simulated images (piecewise-smooth textured phantoms, simulated
radiographs, flat phantoms with faint inclusions, and slices of our synthetic head CT at several windows).
The held-out images, listed once here and used by `benchmarks/enhance_quality.py`, are kept out of the pool
by name and, as a guard against the same pixels under another name (pydicom ships MR_small in eight
transfer syntaxes), by a pixel comparison.

`write_training_pool(folder)` writes the pool as 16-bit PNGs, one file per image, so the trainer's
split-by-series treats every image as its own series and no image is split across training and validation.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from medviewer.io.atomic import write_atomically

logger = logging.getLogger(__name__)

# scikit-image's images kept out of training: they are the held-out set (camera and moon whole, not just
# the centre crops the benchmark scores, so that no patch of a held-out image is ever trained on).
HELD_OUT_SKIMAGE = ("camera", "moon", "coins", "shepp_logan_phantom")
# pydicom test files kept out: the held-out CT_small and MR_small, and MR_small's other encodings.
HELD_OUT_DICOM_PREFIXES = ("CT_small", "MR_small")
# scikit-image images bundled with the package (no download): the rest of its gallery needs the network.
_SKIMAGE_POOL = (
    "astronaut",
    "brick",
    "cat",
    "cell",
    "chelsea",
    "clock",
    "coffee",
    "grass",
    "gravel",
    "horse",
    "hubble_deep_field",
    "immunohistochemistry",
    "logo",
    "microaneurysms",
    "page",
    "retina",
    "rocket",
    "text",
)
_MIN_SIDE = 64  # smaller frames (pydicom's 16 x 16 DICOMDIR fixtures) hold no structure worth learning


def held_out_images() -> dict[str, np.ndarray]:
    """The benchmark's held-out images in their own units (float32): never trained on by a shipped model.

    The centre 256 x 256 of scikit-image's `camera()` and `moon()`, `coins()`, the Shepp-Logan phantom, and
    pydicom's CT_small.dcm and MR_small.dcm in modality units (scikit-image's `brain()` would need a download).
    """
    import pydicom
    from pydicom.data import get_testdata_file
    from skimage import data

    images = {
        "camera (centre 256)": data.camera()[128:384, 128:384].astype(np.float32),
        "moon (centre 256)": data.moon()[128:384, 128:384].astype(np.float32),
        "coins": data.coins().astype(np.float32),
        "Shepp-Logan phantom": data.shepp_logan_phantom().astype(np.float32),
    }
    for name in ("CT_small.dcm", "MR_small.dcm"):
        dataset = pydicom.dcmread(get_testdata_file(name, download=False))
        values = pydicom.pixels.apply_modality_lut(dataset.pixel_array, dataset)
        images[name] = np.asarray(values, np.float32)
    return images


def normalised(image: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1] over the image, as the degradation protocol does (a flat image becomes zeros)."""
    image = np.asarray(image, np.float32)
    low, high = float(image.min()), float(image.max())
    return (image - low) / (high - low) if high > low else np.zeros_like(image)


def is_held_out(image: np.ndarray, held_out: list[np.ndarray], tolerance: float = 0.02) -> bool:
    """Whether `image` holds the pixels of a held-out image (same shape, normalised, up to `tolerance`), or
    of one of the held-out images' full-size originals: the guard behind the name lists."""
    candidate = normalised(image)
    for reference in held_out:
        if reference.shape == candidate.shape and float(np.abs(normalised(reference) - candidate).mean()) < tolerance:
            return True
    return False


def _held_out_references() -> list[np.ndarray]:
    from skimage import data

    return [*held_out_images().values(), data.camera(), data.moon()]


def _grey(image: np.ndarray) -> np.ndarray:
    """Luminance of RGB(A) images (ITU-R BT.601 weights, as scikit-image's rgb2gray uses BT.709; either is
    fine for texture), the image itself when already grey."""
    image = np.asarray(image, np.float32)
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        return image[..., 0] * 0.299 + image[..., 1] * 0.587 + image[..., 2] * 0.114
    return image


def skimage_images(motorcycle: bool = True) -> Iterator[tuple[str, np.ndarray]]:
    """scikit-image's bundled photographs and micrographs, grey; with `motorcycle`, also the left view of its
    stereo pair (500 x 741, the largest and most detailed photograph bundled; pool v4 on)."""
    from skimage import data

    for name in _SKIMAGE_POOL:
        yield f"skimage/{name}", _grey(getattr(data, name)())
    if motorcycle:
        yield "skimage/motorcycle_left", _grey(data.stereo_motorcycle()[0])


def photo_variants(
    motorcycle: bool = True, plane_scales: Sequence[float] = (1.0,), photo_scales: Sequence[float] = (0.7,)
) -> Iterator[tuple[str, np.ndarray]]:
    """More views of the bundled photographs (pool v6): each colour photograph's red, green and blue planes
    as grey images (the same scene with other contrasts between its materials), at each of `plane_scales`
    (pool v7: also at 0.7 and half size), and every photograph at each of `photo_scales` of its size
    (antialiased; 0.7 is between the full and half sizes the pool already has; pool v8 adds 0.85 and 0.6).
    Why: the photographs are where a blind CNN loses to BM3D, and in pool v4 they are only a tenth of the
    frames."""
    from skimage import data

    photos = {name: getattr(data, name)() for name in _SKIMAGE_POOL}
    if motorcycle:
        photos["motorcycle_left"] = data.stereo_motorcycle()[0]
    for name, photo in photos.items():
        if photo.ndim == 3 and photo.shape[-1] in (3, 4):
            for index, plane in enumerate("rgb"):
                channel = np.asarray(photo[..., index], np.float32)
                if float(channel.std()) > 0:
                    for scale in plane_scales:
                        yield f"skimage-variants/{name}-{plane}{_scale_suffix(scale)}", _rescaled(channel, scale)
        grey = _grey(photo)
        for scale in photo_scales:
            yield f"skimage-variants/{name}{_scale_suffix(scale)}", _rescaled(grey, scale)


def _scale_suffix(scale: float) -> str:
    return {1.0: "", 0.5: "-half"}.get(scale, f"-{scale:g}")


def _rescaled(image: np.ndarray, scale: float) -> np.ndarray:
    """`image` at `scale` of its size, antialiased (itself at 1)."""
    from skimage.transform import rescale

    if scale == 1:
        return image
    return rescale(np.asarray(image, np.float32), scale, anti_aliasing=True, preserve_range=True).astype(np.float32)


def dicom_images(modalities: frozenset[str] | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """Every decodable frame of pydicom's test files at least 64 pixels on a side, in modality units
    (colour frames as luminance), except the held-out files and their re-encodings; only those of the given
    DICOM `modalities` ("CT", "MR") when they are given."""
    import pydicom
    from pydicom.data import get_testdata_files

    seen: set[bytes] = set()
    for path in sorted(get_testdata_files()):
        name = os.path.basename(path)
        if name.startswith(HELD_OUT_DICOM_PREFIXES):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dataset = pydicom.dcmread(path)
                if modalities is not None and str(dataset.get("Modality", "")) not in modalities:
                    continue
                pixels = dataset.pixel_array
                photometric = str(dataset.get("PhotometricInterpretation", ""))
                if photometric.startswith("YBR"):
                    pixels = pydicom.pixels.convert_color_space(pixels, photometric, "RGB")
                elif photometric == "PALETTE COLOR":
                    pixels = pydicom.pixels.apply_color_lut(pixels, dataset)
                elif int(dataset.get("SamplesPerPixel", 1)) == 1:
                    pixels = pydicom.pixels.apply_modality_lut(pixels, dataset)
        except Exception as error:  # noqa: BLE001 - pydicom's test data holds deliberately broken files
            logger.debug("skipping %s: %s", name, error)
            continue
        frames = int(dataset.get("NumberOfFrames", 1) or 1)
        stack = np.asarray(pixels, np.float32)
        if frames == 1:
            stack = stack[np.newaxis]
        # Frames of one cine loop are near copies: three spread over the loop are enough.
        chosen = sorted({round(position) for position in np.linspace(0, frames - 1, min(frames, 3))})
        for index in chosen:
            frame = _grey(stack[index])
            if min(frame.shape) < _MIN_SIDE or float(frame.std()) == 0.0:
                continue
            key = normalised(frame).astype(np.float16).tobytes()
            if key in seen:  # the same pixels in another transfer syntax
                continue
            seen.add(key)
            yield f"dicom/{name}" + (f"-{index:02d}" if frames > 1 else ""), frame


def textured_phantom(size: int, seed: int) -> np.ndarray:
    """A piecewise-smooth image: soft-edged ellipses and polygons of random intensity over a smooth background,
    each region carrying its own band-limited texture, as soft tissue, organs and lesions do in CT and MR.
    Sharp and blurred edges, flat and textured regions and low- and high-contrast structures all occur, so a
    denoiser must keep edges and texture rather than flatten everything."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    rows, columns = (np.mgrid[0:size, 0:size] + 0.5) / size

    def smooth_field(scale: float) -> np.ndarray:
        field = ndimage.gaussian_filter(rng.standard_normal((size, size)).astype(np.float32), scale * size)
        return field / (float(field.std()) + 1e-8)

    image = 0.3 + 0.1 * smooth_field(0.15)
    if rng.random() < 0.5:  # a dark surround (air outside the body), where classical noise estimates fail
        body = ((rows - 0.5) / rng.uniform(0.35, 0.48)) ** 2 + ((columns - 0.5) / rng.uniform(0.3, 0.48)) ** 2 <= 1
        image = np.where(body, image, 0.0)
    for _ in range(int(rng.integers(6, 16))):
        centre = rng.uniform(0.1, 0.9, 2)
        axes = rng.uniform(0.02, 0.25, 2)
        angle = rng.uniform(0, np.pi)
        cosine, sine = np.cos(angle), np.sin(angle)
        u = ((rows - centre[0]) * cosine + (columns - centre[1]) * sine) / axes[0]
        v = (-(rows - centre[0]) * sine + (columns - centre[1]) * cosine) / axes[1]
        if rng.random() < 0.3:  # a polygon-ish region: straight edges and corners
            distance = np.maximum(np.abs(u), np.abs(v))
        else:
            distance = np.sqrt(u**2 + v**2)
        edge_width = rng.choice([0.0, 0.02, 0.1]) + 1e-3
        coverage = np.clip((1.0 - distance) / edge_width, 0.0, 1.0)
        value = rng.uniform(0.0, 1.0) + rng.uniform(0.0, 0.15) * smooth_field(rng.uniform(0.005, 0.03))
        image = image * (1 - coverage) + value * coverage
    image += rng.uniform(0.0, 0.04) * smooth_field(0.003)  # fine grain everywhere
    return image.astype(np.float32)


def piecewise_constant_phantom(size: int, seed: int) -> np.ndarray:
    """Flat regions with sharp edges and faint inclusions, as in CT quality-assurance phantoms, masks, labels
    and the large uniform areas of real CT: random ellipses inside a random body outline, most of them differing
    from their surround by 1-5 % of the range. Half the images have hard, stair-stepped (rasterised, not
    antialiased) edges, the others a one-pixel ramp. Without such images a denoiser learns that every edge is
    soft and every region textured: it rounds off hard edges and leaves noise in flat areas, where BM3D excels."""
    rng = np.random.default_rng(seed)
    hard_edges = rng.random() < 0.5
    rows, columns = (np.mgrid[0:size, 0:size] + 0.5) / size * 2.0 - 1.0

    def ellipse(centre, axes, angle) -> np.ndarray:
        cosine, sine = np.cos(angle), np.sin(angle)
        u = ((rows - centre[0]) * cosine + (columns - centre[1]) * sine) / axes[0]
        v = (-(rows - centre[0]) * sine + (columns - centre[1]) * cosine) / axes[1]
        radius = np.sqrt(u**2 + v**2)
        if hard_edges:
            return (radius <= 1.0).astype(np.float32)
        pixels_per_unit = size / 2.0 * min(axes)
        return np.clip((1.0 - radius) * pixels_per_unit + 0.5, 0.0, 1.0)  # coverage with a one-pixel ramp

    body = ellipse(rng.uniform(-0.1, 0.1, 2), rng.uniform(0.6, 0.95, 2), rng.uniform(0, np.pi))
    level = rng.uniform(0.2, 0.8)
    image = body * level
    for _ in range(int(rng.integers(4, 14))):
        coverage = ellipse(rng.uniform(-0.6, 0.6, 2), rng.uniform(0.03, 0.35, 2), rng.uniform(0, np.pi)) * body
        step = rng.uniform(0.01, 0.05) if rng.random() < 0.7 else rng.uniform(0.1, 0.6)
        value = np.clip(level + step * rng.choice([-1.0, 1.0]), 0.0, 1.0)
        image = image * (1 - coverage) + value * coverage
    return image.astype(np.float32)


def dead_leaves(size: int, seed: int) -> np.ndarray:
    """A dead-leaves image: flat discs and rings of random grey level stacked on each other, radii drawn with
    density ~ r^-3 (scale invariant, as natural images are) from two pixels to a quarter of the side.
    Occlusion makes hard edges of every contrast up to the full range, corners, slivers a pixel or two wide
    and thin bright shells (skull-, cortex- and coin-rim-like), the structures on which BM3D beat the default
    denoiser trained on the rest of the pool. Synthetic dead leaves are a known stand-in for natural images
    when training denoisers (Achddou et al. 2021, "Synthetic images as a regularity prior for image
    restoration neural networks", SSVM). Half the images are rasterised (hard, stair-stepped edges), the
    others antialiased with a one-pixel ramp; a third are then blurred slightly, as a camera or a CT kernel
    would."""
    rng = np.random.default_rng(seed)
    return _stack_leaves(size, rng, lambda rows, columns: rng.uniform(0.0, 1.0))


def textured_dead_leaves(size: int, seed: int, photos: Sequence[np.ndarray]) -> np.ndarray:
    """Dead leaves whose leaves carry texture, as objects in photographs and organs in CT and MR do: each leaf
    is a grey level plus, at a random amplitude, a grating (sine or square wave, any orientation, 3-40 pixels
    a period), band-limited noise (isotropic or stretched, 0.5-4 pixels), or a crop of one of `photos` (the
    pool's photographs, normalised to [0, 1]) at full or half scale; a quarter stay flat. Textured leaves are
    what Achddou et al. (2023, "Fully synthetic training for image restoration tasks", CVIU) add to close
    most of the gap between dead leaves and natural images; the held-out camera and coins, where the default
    denoiser still lost to BM3D after the flat leaves, are textured regions meeting at occluding edges."""
    rng = np.random.default_rng(seed)
    photos = [photo for photo in photos if min(photo.shape) >= 2 * size // 4 + 8]

    def texture(rows: np.ndarray, columns: np.ndarray) -> np.ndarray | float:
        level = rng.uniform(0.0, 1.0)
        kind = int(rng.integers(4))
        amplitude = float(np.exp(rng.uniform(np.log(0.02), np.log(0.3))))
        if kind == 0 or (kind == 3 and not photos):
            return level
        if kind == 1:
            angle, period = rng.uniform(0, np.pi), float(np.exp(rng.uniform(np.log(3.0), np.log(40.0))))
            wave = np.sin(2 * np.pi * (rows * np.cos(angle) + columns * np.sin(angle)) / period + rng.uniform(0, 7))
            pattern = np.sign(wave) if rng.random() < 0.3 else wave * np.sqrt(2)
        elif kind == 2:
            from scipy import ndimage

            widths = (
                np.exp(rng.uniform(np.log(0.5), np.log(4.0), 2)) if rng.random() < 0.3 else [rng.uniform(0.5, 4.0)] * 2
            )
            pattern = ndimage.gaussian_filter(rng.standard_normal(rows.shape), widths)
        else:
            photo = photos[int(rng.integers(len(photos)))]
            if rng.random() < 0.5 and min(photo.shape) >= 2 * max(rows.shape) + 2:
                photo = photo[::2, ::2]  # half scale: finer texture per pixel (decimation is enough for texture)
            height, width = rows.shape
            top = int(rng.integers(photo.shape[0] - height + 1))
            left = int(rng.integers(photo.shape[1] - width + 1))
            pattern = photo[top : top + height, left : left + width]
            amplitude *= 2
        pattern = (pattern - pattern.mean()) / (float(pattern.std()) + 1e-6)
        return np.clip(level + amplitude * pattern, 0.0, 1.0)

    return _stack_leaves(size, rng, texture)


def _stack_leaves(size: int, rng: np.random.Generator, fill) -> np.ndarray:
    """Dead leaves drawn with `rng`, each leaf's content `fill(rows, columns)` over its bounding box (a grey
    level or an array of that box's shape)."""
    from scipy import ndimage

    hard_edges = rng.random() < 0.5
    image = np.full((size, size), rng.uniform(0.0, 1.0), np.float32)
    smallest, largest = 2.0, size / 4.0
    mean_area = np.pi * smallest**2 * 2 * np.log(largest / smallest)  # E[pi r^2] under r^-3
    for _ in range(int(6 * size * size / mean_area)):  # six layers deep on average: the first leaves are hidden
        # Inverse-CDF sample of p(r) ~ r^-3 on [smallest, largest].
        fraction = rng.random()
        radius = (smallest**-2 - fraction * (smallest**-2 - largest**-2)) ** -0.5
        centre = rng.uniform(-radius, size + radius, 2)
        top, bottom = max(int(centre[0] - radius) - 1, 0), min(int(centre[0] + radius) + 2, size)
        left, right = max(int(centre[1] - radius) - 1, 0), min(int(centre[1] + radius) + 2, size)
        if top >= bottom or left >= right:
            continue
        rows, columns = np.mgrid[top:bottom, left:right] + 0.5
        distance = np.hypot(rows - centre[0], columns - centre[1])
        coverage = (distance <= radius) if hard_edges else np.clip(radius - distance + 0.5, 0.0, 1.0)
        if radius > 6 and rng.random() < 0.15:  # a ring: a thin shell of 1-4 pixels
            inner = radius - rng.uniform(1.0, 4.0)
            coverage = coverage * ((distance > inner) if hard_edges else np.clip(distance - inner + 0.5, 0.0, 1.0))
        region = image[top:bottom, left:right]
        image[top:bottom, left:right] = region * (1 - coverage) + fill(rows, columns) * coverage
    if rng.random() < 1 / 3:
        image = ndimage.gaussian_filter(image, rng.uniform(0.3, 1.0))
    return image.astype(np.float32)


def simulated_radiograph(size: int, seed: int) -> np.ndarray:
    """A projection radiograph: exp(-line integral) through random soft-tissue and bone ellipsoids, shown as
    attenuation (bright bone), with the smooth gradients and overlapping edges of plain films."""
    rng = np.random.default_rng(seed)
    rows, columns = (np.mgrid[0:size, 0:size] + 0.5) / size * 2.0 - 1.0
    path = np.zeros((size, size), np.float32)
    for index in range(int(rng.integers(8, 20))):
        bone = index % 3 == 0
        centre = rng.uniform(-0.8, 0.8, 2)
        axes = rng.uniform(0.05, 0.25, 2) if bone else rng.uniform(0.2, 0.9, 2)
        angle = rng.uniform(0, np.pi)
        cosine, sine = np.cos(angle), np.sin(angle)
        u = ((rows - centre[0]) * cosine + (columns - centre[1]) * sine) / axes[0]
        v = (-(rows - centre[0]) * sine + (columns - centre[1]) * cosine) / axes[1]
        depth = np.sqrt(np.clip(1.0 - u**2 - v**2, 0.0, None))  # chord length through an ellipsoid
        if bone and rng.random() < 0.5:  # a hollow bone: cortex denser than the marrow
            depth = depth - 0.7 * np.sqrt(np.clip(1.0 - (u / 0.7) ** 2 - (v / 0.7) ** 2, 0.0, None))
        path += depth * (rng.uniform(1.0, 2.5) if bone else rng.uniform(0.1, 0.5))
    transmitted = np.exp(-path)
    return (1.0 - transmitted).astype(np.float32)


def head_ct_slices(size: int = 384) -> Iterator[tuple[str, np.ndarray]]:
    """Noise-free slices of the synthetic head CT, windowed at brain, subdural, bone and full range: one
    anatomy seen with four intensity distributions."""
    from medviewer.io.synthetic import head_phantom_hu

    volume = head_phantom_hu(12, size, noise_hu=0.0)
    windows = {"brain": (40, 80), "subdural": (75, 215), "bone": (600, 2800), "full": None}
    for index in range(0, len(volume), 3):
        for window_name, window in windows.items():
            hu = volume[index]
            if window is not None:
                centre, width = window
                hu = np.clip(hu, centre - width / 2, centre + width / 2)
            yield f"head-ct/slice{index:02d}-{window_name}", hu


def half_size(image: np.ndarray) -> np.ndarray:
    """The image downscaled by 2 with antialiasing: the same content at another scale (finer texture per
    pixel), which also gives the few large real images more weight beside the generated ones."""
    return _rescaled(image, 0.5)


def pool_images(
    phantoms: int = 48,
    radiographs: int = 24,
    flat_phantoms: int = 48,
    leaves: int = 64,
    textured_leaves: int = 96,
    motorcycle: bool = True,
    size: int = 256,
    variants: bool = False,
    plane_scales: Sequence[float] = (1.0,),
    photo_scales: Sequence[float] = (0.7,),
) -> Iterator[tuple[str, np.ndarray]]:
    """Every image of the pool as (relative name without suffix, image in its own units). The defaults are
    pool v4; v1 is `flat_phantoms=0, leaves=0, textured_leaves=0, motorcycle=False`, v2 the same with the flat
    phantoms, v3 with the flat dead leaves too (`textured_leaves=0, motorcycle=False`), v6 is v4 with the
    photographs' `variants` (their colour planes and 0.7 scale), v7 is v6 with `plane_scales=(1.0, 0.7, 0.5)`
    (the colour planes at 0.7 and half size too); v8 is v7 with the grey photographs at
    `photo_scales=(0.85, 0.7, 0.6)` and the planes at `plane_scales=(1.0, 0.85, 0.7, 0.6, 0.5)`, and half the
    textured phantoms, radiographs and textured leaves (`phantoms=24, radiographs=12, textured_leaves=48`):
    photographs are then half of the frames. v9 is v8 with twice the flat phantoms and dead leaves
    (`flat_phantoms=96, leaves=128`), the hard, flat edges that a from-scratch run otherwise learns too little
    of. v5 was a one-off (README.md)."""
    held_out = _held_out_references()
    photos = list(skimage_images(motorcycle))
    for name, image in (*photos, *dicom_images()):
        if is_held_out(image, held_out):
            logger.info("%s holds a held-out image's pixels: left out", name)
            continue
        yield name, image
        if min(image.shape) >= 256:
            yield f"{name}-half", half_size(image)
    if variants:
        for name, image in photo_variants(motorcycle, plane_scales, photo_scales):
            if not is_held_out(image, held_out):
                yield name, image
    yield from head_ct_slices()
    for index in range(phantoms):
        yield f"phantom/textured-{index:03d}", textured_phantom(size, 10_000 + index)
    for index in range(radiographs):
        yield f"radiograph/simulated-{index:03d}", simulated_radiograph(size, 20_000 + index)
    for index in range(flat_phantoms):
        yield f"phantom/flat-{index:03d}", piecewise_constant_phantom(size, 30_000 + index)
    for index in range(leaves):
        yield f"phantom/leaves-{index:03d}", dead_leaves(size, 40_000 + index)
    textures = [normalised(image) for _, image in photos if not is_held_out(image, held_out)]
    for index in range(textured_leaves):
        yield f"phantom/textured-leaves-{index:03d}", textured_dead_leaves(size, 50_000 + index, textures)


def write_training_pool(folder: Path, **options: int | bool) -> list[Path]:
    """Write the pool as 16-bit PNGs (each image min-max normalised), atomically per file; returns the paths."""
    from PIL import Image

    written = []
    for name, image in pool_images(**options):
        path = Path(folder) / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = np.round(normalised(image) * 65535).astype(np.uint16)
        write_atomically(path, lambda temporary, pixels=pixels: Image.fromarray(pixels).save(temporary, format="PNG"))
        written.append(path)
    return written
