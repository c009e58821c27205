"""Tile plans for images larger than one network pass: where each tile reads, what it keeps, how tiles blend.

Each tile keeps a core and reads `halo` pixels of context around it. When the halo covers the network's
receptive radius, a core's pixels are exactly what the whole image would give, so tiled equals untiled;
neighbouring cores also overlap and are blended with linear ramps, which hides any remaining difference
for networks whose receptive field is unbounded (global attention, instance norm). All tiles of a plan have
one size, so tiles of several slices batch together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AxisTile:
    """One tile along one axis: the input it reads [read_start, read_start + read_length) and the core
    [core_start, core_stop) whose outputs it contributes, blended by `weights` (one per core pixel)."""

    read_start: int
    core_start: int
    core_stop: int
    weights: np.ndarray


@dataclass(frozen=True)
class AxisPlan:
    length: int
    read_length: int
    tiles: tuple[AxisTile, ...]


def plan_axis(length: int, core: int, halo: int, overlap: int, multiple: int = 1) -> AxisPlan:
    """Cover [0, length) with cores of at most `core` pixels that overlap by about `overlap`, each read
    with `halo` pixels of context (or up to the image edge, where the network sees the same edge as it
    would untiled). Read windows start on multiples of `multiple`, so a network that downsamples sees
    the same pixel grid as untiled; `length` must itself be a multiple of `multiple` (the engine pads)."""
    if length % multiple:
        raise ValueError(f"length {length} is not a multiple of {multiple}")
    if _read_length(core, halo, multiple) >= length:  # one pass over the whole axis: exact, nothing to blend
        return AxisPlan(length, length, (AxisTile(0, 0, length, np.ones(length, np.float32)),))
    overlap = min(overlap, core // 2)
    count = math.ceil((length - overlap) / (core - overlap))
    # Spread the tiles evenly so no tile is a sliver; integer arithmetic, so a tile's start and its
    # neighbour's stop can never round apart and leave a pixel uncovered.
    span = length - overlap
    starts = [index * span // count for index in range(count)]
    stops = [(index + 1) * span // count + overlap for index in range(count)]
    # Read what the spread cores need, not what the largest allowed core would: less halo work per pixel.
    read_length = min(length, _read_length(max(b - a for a, b in zip(starts, stops, strict=True)), halo, multiple))
    weights = _partition_of_unity(length, starts, stops)
    tiles = []
    for start, stop, weight in zip(starts, stops, weights, strict=True):
        read_start = min(max(0, start - halo), length - read_length)
        read_start -= read_start % multiple
        if not (read_start == 0 or start - read_start >= halo) or not (
            read_start + read_length == length or read_start + read_length - stop >= halo
        ):
            raise AssertionError("tile plan lost context")  # guarded by _read_length's rounding
        tiles.append(AxisTile(read_start, start, stop, weight))
    return AxisPlan(length, read_length, tuple(tiles))


def _partition_of_unity(length: int, starts: list[int], stops: list[int]) -> list[np.ndarray]:
    """Linear ramps across each overlap, normalised so that the weights at every pixel sum to one."""
    ramps = []
    for index, (start, stop) in enumerate(zip(starts, stops, strict=True)):
        positions = np.arange(start, stop, dtype=np.float64) + 0.5
        weight = np.ones(stop - start)
        if index > 0:  # fade in over the overlap with the previous tile
            overlap = stops[index - 1] - start
            if overlap > 0:
                weight = np.minimum(weight, (positions - start) / overlap)
        if index < len(starts) - 1:  # fade out over the overlap with the next tile
            overlap = stop - starts[index + 1]
            if overlap > 0:
                weight = np.minimum(weight, (stop - positions) / overlap)
        ramps.append(weight)
    total = np.zeros(length)
    for start, stop, weight in zip(starts, stops, ramps, strict=True):
        total[start:stop] += weight
    return [
        (weight / total[start:stop]).astype(np.float32)
        for start, stop, weight in zip(starts, stops, ramps, strict=True)
    ]


def _read_length(core: int, halo: int, multiple: int) -> int:
    """A window that holds `core` plus `halo` on both sides wherever a multiple of `multiple` starts it."""
    return _round_up(core + 2 * halo + multiple - 1, multiple)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple
