"""Image-quality measures (PSNR, SSIM, error maps, blind noise estimate) as plain functions of numpy arrays."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from medviewer.errors import MedViewerError, NoFinitePixelsError, ShapeMismatchError

SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
# scikit-image truncates the Gaussian at 3.5 sigma so that sigma 1.5 gives Wang et al.'s 11-tap window.
_SSIM_TRUNCATE = 3.5
SSIM_RADIUS = int(_SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
SSIM_MIN_SIDE = 2 * SSIM_RADIUS + 1


class ImageTooSmallError(MedViewerError):
    """An image too small for a measure's window (after any border crop)."""


@dataclass(frozen=True)
class Scores:
    """The protocol's two scores of a test image against its reference."""

    psnr: float
    ssim: float


def _describe_shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(side) for side in shape)


def _comparable_pair(reference: np.ndarray, test: np.ndarray, border: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Both images as float64 with `border` pixels cropped from each spatial edge, or a user-facing error."""
    reference = np.asarray(reference, dtype=np.float64)
    test = np.asarray(test, dtype=np.float64)
    if reference.shape != test.shape:
        raise ShapeMismatchError(
            f"cannot compare images of different shapes: reference is {_describe_shape(reference.shape)}, "
            f"test is {_describe_shape(test.shape)}"
        )
    if reference.ndim not in (2, 3):
        raise ShapeMismatchError(
            f"expected a 2-D grey or (H, W, channels) colour image, got shape {_describe_shape(reference.shape)}"
        )
    if border < 0:
        raise ValueError("border must be >= 0")
    if border:
        height, width = reference.shape[:2]
        if 2 * border >= min(height, width):
            size = _describe_shape(reference.shape[:2])
            raise ImageTooSmallError(f"a {size} image has nothing left after cropping a {border}-pixel border")
        reference = reference[border:-border, border:-border]
        test = test[border:-border, border:-border]
    return reference, test


def _finite_in_both(reference: np.ndarray, test: np.ndarray) -> np.ndarray | None:
    """Where both images are finite (a colour pixel counts per channel); None when all are, the common case,
    so that it costs one pass and the arithmetic stays exactly scikit-image's."""
    finite = np.isfinite(reference) & np.isfinite(test)
    if finite.all():
        return None
    if not finite.any():
        raise NoFinitePixelsError("no pixel is finite in both images (all NaN or infinite): nothing to measure")
    return finite


def psnr(reference: np.ndarray, test: np.ndarray, data_range: float = 1.0, border: int = 0) -> float:
    """Peak signal-to-noise ratio in dB, 10 log10(data_range^2 / MSE); `math.inf` for identical images.

    Equals `skimage.metrics.peak_signal_noise_ratio(reference, test, data_range=data_range)` on the cropped
    images; colour images pool the squared error over all channels, as scikit-image does. Pixels that are
    not finite (NaN, infinity) in either image are left out: the error is the mean over the others.
    """
    reference, test = _comparable_pair(reference, test, border)
    finite = _finite_in_both(reference, test)
    if finite is None:
        mean_squared_error = float(np.mean((reference - test) ** 2))
    else:
        mean_squared_error = float(np.mean((reference[finite] - test[finite]) ** 2))
    if mean_squared_error == 0.0:
        return math.inf
    return 10.0 * math.log10(float(data_range) ** 2 / mean_squared_error)


def _gaussian_window(image: np.ndarray) -> np.ndarray:
    # gaussian_filter is separable (one 1-D pass per axis); 'reflect' and truncate match skimage's SSIM.
    return ndimage.gaussian_filter(image, sigma=SSIM_SIGMA, truncate=_SSIM_TRUNCATE, mode="reflect")


def _ssim_map_2d(reference: np.ndarray, test: np.ndarray, data_range: float) -> np.ndarray:
    finite = _finite_in_both(reference, test)
    if finite is None:
        window = _gaussian_window
    else:
        # Local statistics over the finite pixels only (normalised convolution: each Gaussian-weighted sum is
        # divided by the weight the finite pixels carry), so one NaN does not void the 120 windows around it.
        # Why not scikit-image here: it has no mask; with every pixel finite the weights are all 1 and this
        # path is not taken, so the result stays exactly scikit-image's.
        weight = _gaussian_window(finite.astype(np.float64))
        reference, test = np.where(finite, reference, 0.0), np.where(finite, test, 0.0)

        def window(image: np.ndarray) -> np.ndarray:
            with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 far from any finite pixel: NaN, dropped
                return _gaussian_window(image) / weight

    mean_reference = window(reference)
    mean_test = window(test)
    # Population (not sample) covariance, as Wang et al. 2004 define it.
    variance_reference = window(reference * reference) - mean_reference * mean_reference
    variance_test = window(test * test) - mean_test * mean_test
    covariance = window(reference * test) - mean_reference * mean_test
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    luminance_numerator = 2.0 * mean_reference * mean_test + c1
    structure_numerator = 2.0 * covariance + c2
    luminance_denominator = mean_reference**2 + mean_test**2 + c1
    structure_denominator = variance_reference + variance_test + c2
    local = (luminance_numerator * structure_numerator) / (luminance_denominator * structure_denominator)
    if finite is not None:
        local[~finite] = np.nan  # no score where there is no pixel; `ssim` averages the finite ones
    return local


def _checked_for_ssim(reference: np.ndarray, test: np.ndarray, border: int) -> tuple[np.ndarray, np.ndarray]:
    reference, test = _comparable_pair(reference, test, border)
    if min(reference.shape[:2]) < SSIM_MIN_SIDE:
        after_border = f" after cropping a {border}-pixel border" if border else ""
        raise ImageTooSmallError(
            f"SSIM needs at least {SSIM_MIN_SIDE}x{SSIM_MIN_SIDE} pixels (its Gaussian window), "
            f"got {_describe_shape(reference.shape[:2])}{after_border}"
        )
    return reference, test


def ssim_map(reference: np.ndarray, test: np.ndarray, data_range: float = 1.0, border: int = 0) -> np.ndarray:
    """Local SSIM at every pixel (float64), shaped like the cropped input (per channel for colour).

    Same definition as `ssim`; the map keeps the filter-radius strip that the mean score leaves out, so the
    viewer can overlay it on the whole (cropped) image.
    """
    reference, test = _checked_for_ssim(reference, test, border)
    if reference.ndim == 2:
        return _ssim_map_2d(reference, test, float(data_range))
    channels = [
        _ssim_map_2d(reference[..., channel], test[..., channel], float(data_range))
        for channel in range(reference.shape[-1])
    ]
    return np.stack(channels, axis=-1)


def ssim(reference: np.ndarray, test: np.ndarray, data_range: float = 1.0, border: int = 0) -> float:
    """Mean structural similarity (Wang, Bovik, Sheikh, Simoncelli, IEEE TIP 13(4), 2004).

    Gaussian-weighted window (sigma 1.5, 11 taps), population covariance, K1 = 0.01, K2 = 0.03. This is
    exactly `skimage.metrics.structural_similarity(reference, test, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=data_range)` (with `channel_axis=-1` for colour: the mean over
    channels), including its exclusion of a filter-radius (5-pixel) strip from the mean. Our own float64
    implementation because the viewer needs the map as well as the score, without scikit-image's overhead.
    `border` pixels are cropped from each edge first (super-resolution protocol: 4). Pixels that are not
    finite in either image are left out: local statistics use the finite pixels of each window, and the
    mean is over the finite pixels.
    """
    local = ssim_map(reference, test, data_range=data_range, border=border)
    inner = local[SSIM_RADIUS:-SSIM_RADIUS, SSIM_RADIUS:-SSIM_RADIUS]
    # Per-channel means then their mean equals the overall mean, since every channel has the same size.
    mean = float(inner.mean(dtype=np.float64))
    if math.isnan(mean):  # some pixels were not finite: their map entries are NaN, the rest are scored
        scored = inner[np.isfinite(inner)]
        if scored.size == 0:
            raise NoFinitePixelsError("no finite pixel away from the image border: SSIM has nothing to measure")
        mean = float(scored.mean(dtype=np.float64))
    return mean


def score(reference: np.ndarray, test: np.ndarray, border: int = 0, data_range: float = 1.0) -> Scores:
    """PSNR and SSIM of `test` against `reference` under the same border and data range."""
    return Scores(
        psnr=psnr(reference, test, data_range=data_range, border=border),
        ssim=ssim(reference, test, data_range=data_range, border=border),
    )


def absolute_error_map(reference: np.ndarray, test: np.ndarray) -> np.ndarray:
    """|test - reference| per pixel (float32, in the inputs' units): where a method went wrong, not which way."""
    reference, test = _comparable_pair(reference, test)
    with np.errstate(invalid="ignore"):  # inf - inf is NaN: no error can be measured there
        return np.abs(test - reference).astype(np.float32)


def signed_difference_map(reference: np.ndarray, test: np.ndarray) -> np.ndarray:
    """test - reference per pixel (float32, in the inputs' units): positive where the test is brighter."""
    reference, test = _comparable_pair(reference, test)
    with np.errstate(invalid="ignore"):  # inf - inf is NaN: no difference can be measured there
        return (test - reference).astype(np.float32)


# Immerkaer's kernel: the difference of two Laplacian approximations, which cancels locally linear image
# structure (and mostly smooth structure) so what remains is noise.
_IMMERKAER_KERNEL = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])


def _immerkaer_sigma_2d(image: np.ndarray) -> float:
    finite = np.isfinite(image)
    if finite.all():
        height, width = image.shape
        response = ndimage.correlate(image, _IMMERKAER_KERNEL, mode="constant")[1:-1, 1:-1]
        return math.sqrt(math.pi / 2.0) * float(np.abs(response).sum()) / (6.0 * (width - 2) * (height - 2))
    # Only pixels whose whole 3x3 neighbourhood is finite: the kernel cannot be renormalised without
    # letting image structure back in. The sum over (W-2)(H-2) pixels becomes a mean over those.
    usable = ndimage.binary_erosion(finite, structure=np.ones((3, 3), bool), border_value=0)[1:-1, 1:-1]
    if not usable.any():
        return math.nan
    response = ndimage.correlate(np.where(finite, image, 0.0), _IMMERKAER_KERNEL, mode="constant")[1:-1, 1:-1]
    return math.sqrt(math.pi / 2.0) * float(np.abs(response[usable]).mean()) / 6.0


def estimate_noise_sigma(image: np.ndarray) -> float:
    """Blind estimate of additive white Gaussian noise's standard deviation, in the image's units.

    J. Immerkaer, "Fast Noise Variance Estimation", Computer Vision and Image Understanding 64(2), 1996:
    sigma = sqrt(pi/2) / (6 (W-2) (H-2)) * sum |I * N| over the interior, N the Laplacian-difference kernel.
    We use it because scikit-image's wavelet estimator needs PyWavelets. Edges and texture bias it upwards.
    Colour (H, W, channels) images give the mean of the per-channel estimates. Pixels that are not finite
    are left out with their neighbours; NaN when no 3x3 neighbourhood is entirely finite.
    """
    values = np.asarray(image, dtype=np.float64)
    if values.ndim not in (2, 3) or min(values.shape[:2]) < 3:
        raise ImageTooSmallError(
            f"noise estimation needs a 2-D or colour image of at least 3x3 pixels, got {_describe_shape(values.shape)}"
        )
    if values.ndim == 2:
        return _immerkaer_sigma_2d(values)
    return float(np.mean([_immerkaer_sigma_2d(values[..., channel]) for channel in range(values.shape[-1])]))


def symmetric_display_limit(difference: np.ndarray, percentile: float = 99.5, max_samples: int = 1 << 16) -> float:
    """The +/- limit for showing a signed difference map with a diverging colour map: the `percentile` of
    |difference|, so that a few extreme pixels do not wash out the rest; never 0, so the map stays defined.

    Large maps are sampled on a regular grid of about `max_samples` pixels: a display limit does not need
    the exact percentile, and the viewer computes it while scrolling."""
    difference = np.asarray(difference)
    if difference.size > max_samples:
        stride = int(np.ceil(np.sqrt(difference.size / max_samples)))
        difference = difference[::stride, ::stride]
    magnitude = np.abs(difference.astype(np.float64))
    magnitude = magnitude[np.isfinite(magnitude)]
    if magnitude.size == 0:
        return 1.0
    limit = float(np.percentile(magnitude, percentile))
    return limit if limit > 0 else float(magnitude.max()) or 1.0


def high_frequency_ratio(reference: np.ndarray, test: np.ndarray, cutoff: float = 0.25) -> float:
    """Spectral energy of `test` above `cutoff` cycles per pixel, as a fraction of the reference's.

    A sharpness measure that needs no learned network (LPIPS would need downloaded weights): 1 keeps the
    reference's fine detail, below 1 is blurrier (bicubic, a network trained on L1 or L2), above 1 adds detail
    or noise the reference lacks. It says nothing about whether the detail is right: read it beside PSNR.
    Both images are mean-removed and Hann-windowed (no wrap-around edge in the spectrum); non-finite pixels
    count as the image's finite mean. Colour images give the ratio of the channels' summed energies.
    """
    reference, test = _comparable_pair(reference, test)
    height, width = reference.shape[:2]
    if min(height, width) < 8:
        raise ImageTooSmallError(f"a spectrum needs at least 8x8 pixels, got {_describe_shape(reference.shape)}")
    window = np.outer(np.hanning(height), np.hanning(width))
    if reference.ndim == 3:
        window = window[..., None]
    radius = np.hypot(np.fft.fftfreq(height)[:, None], np.fft.fftfreq(width)[None, :])
    high = radius > cutoff

    def energy(image: np.ndarray) -> float:
        values = np.asarray(image, dtype=np.float64)
        finite = np.isfinite(values)
        if not finite.any():
            raise NoFinitePixelsError("no finite pixel to measure high frequencies on")
        values = np.where(finite, values, values[finite].mean())
        spectrum = np.abs(np.fft.fft2((values - values.mean()) * window, axes=(0, 1))) ** 2
        return float(spectrum[high].sum())

    reference_energy = energy(reference)
    return energy(test) / reference_energy if reference_energy > 0 else math.nan
