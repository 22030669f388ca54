"""Procedural generator of the embedded `shapes` dataset (10 classes, RGB, any square size).

Each image holds one main shape (circle, square, triangle, star, cross, ring, horizontal
stripes, vertical stripes, checker patch, dot patch) with a random colour, scale, position and
rotation, drawn over a gradient background cluttered with faint distractor shapes and strokes,
then colour-jittered and noised. Rendering is vectorised over a whole chunk of images: every
shape is a signed distance field evaluated on a coordinate grid, turned into an anti-aliased
coverage mask. Images are produced in chunks of `CHUNK` images, each chunk seeded from
(seed, split, chunk index), so the first n images of a larger set equal a set of size n.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from kernels.threads import single_thread

SHAPES_VERSION = 1
SHAPE_CLASSES = (
    "circle", "square", "triangle", "star", "cross",
    "ring", "hstripes", "vstripes", "checker", "dots",
)
NUM_CLASSES = len(SHAPE_CLASSES)
CHUNK = 500  # images per independently seeded chunk (a multiple of NUM_CLASSES)
SPLIT_IDS = {"train": 0, "test": 1}
NUM_DISTRACTORS = 3  # faint shapes of random classes under the main shape
NUM_STROKES = 2  # faint line segments over the main shape


def generate_shapes(
    n: int, seed: int = 0, split: str = "train", image_size: int = 32
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return `n` images (uint8, n x 3 x S x S) and their labels (int64, n)."""
    if split not in SPLIT_IDS:
        raise ValueError(f"split must be one of {sorted(SPLIT_IDS)}, got {split!r}")
    images, labels = [], []
    with single_thread():
        for chunk_index in range(math.ceil(n / CHUNK)):
            gen = _chunk_generator(seed, SPLIT_IDS[split], chunk_index)
            chunk_images, chunk_labels = render_chunk(CHUNK, image_size, gen)
            images.append(chunk_images)
            labels.append(chunk_labels)
    if not images:
        return torch.zeros(0, 3, image_size, image_size, dtype=torch.uint8), torch.zeros(
            0, dtype=torch.int64
        )
    return torch.cat(images)[:n].contiguous(), torch.cat(labels)[:n].contiguous()


def _chunk_generator(seed: int, split_id: int, chunk_index: int) -> torch.Generator:
    state = np.random.SeedSequence([seed, split_id, chunk_index, SHAPES_VERSION])
    return torch.Generator().manual_seed(int(state.generate_state(1, dtype=np.uint64)[0] >> 1))


def render_chunk(n: int, size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Render `n` images (n a multiple of NUM_CLASSES) with balanced labels."""
    labels = torch.rand(n // NUM_CLASSES, NUM_CLASSES, generator=gen).argsort(dim=1).flatten()
    grid = _coordinate_grid(size)
    canvas, base_colour = _background(n, size, gen)
    for _ in range(NUM_DISTRACTORS):
        classes = torch.randint(0, NUM_CLASSES, (n,), generator=gen)
        coverage = _shape_coverage(classes, _pose(n, gen, (0.12, 0.3), (-0.9, 0.9)), grid, size)
        canvas = _paint(canvas, _random_colour(n, gen), coverage * _uniform(n, gen, 0.08, 0.25))
    pose = _pose(n, gen, (0.38, 0.7), (-0.45, 0.45))
    coverage = _shape_coverage(labels, pose, grid, size)
    contrast = _uniform(n, gen, 0.7, 1.0)
    canvas = _paint(canvas, _contrasting_colour(base_colour, gen), coverage * contrast)
    for _ in range(NUM_STROKES):
        coverage = _stroke_coverage(n, grid, size, gen)
        canvas = _paint(canvas, _random_colour(n, gen), coverage * _uniform(n, gen, 0.15, 0.4))
    canvas = _colour_jitter(canvas, gen)
    canvas = canvas + torch.randn(canvas.shape, generator=gen) * _uniform(n, gen, 0.0, 0.05)
    images = (canvas.clamp(0, 1) * 255).round().to(torch.uint8)
    return images, labels


def _uniform(n: int, gen: torch.Generator, low: float, high: float) -> torch.Tensor:
    """Per-image uniform draws shaped (n, 1, 1, 1) for broadcasting over images."""
    return (low + (high - low) * torch.rand(n, generator=gen)).view(n, 1, 1, 1)


def _coordinate_grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates in [-1, 1], x to the right and y downwards."""
    axis = (torch.arange(size, dtype=torch.float32) + 0.5) * (2.0 / size) - 1.0
    return axis.view(1, 1, size), axis.view(1, size, 1)


def _background(n: int, size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear gradient between two related colours along a random direction."""
    start = torch.rand(n, 3, 1, 1, generator=gen)
    end = (start + 0.35 * (torch.rand(n, 3, 1, 1, generator=gen) - 0.5)).clamp(0, 1)
    angle = _uniform(n, gen, 0.0, 2 * math.pi)
    x, y = _coordinate_grid(size)
    ramp = (x * torch.cos(angle) + y * torch.sin(angle) + 1.0) / 2.0  # n,1,S,S in ~[0, 1]
    return start + (end - start) * ramp, (start + end) / 2


def _random_colour(n: int, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, 3, 1, 1, generator=gen)


def _contrasting_colour(base: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A colour that differs from `base` by at least 0.25 in every channel."""
    offset = 0.25 + 0.5 * torch.rand(base.shape, generator=gen)
    return torch.remainder(base + offset, 1.0)


def _paint(canvas: torch.Tensor, colour: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Alpha-blend a flat colour (n,3,1,1) through a coverage mask (n,1,S,S)."""
    return canvas + (colour - canvas) * alpha


def _pose(n: int, gen: torch.Generator, scale: tuple, centre: tuple) -> dict:
    """Random scale, centre, rotation and texture period for `n` shapes."""
    return {
        "scale": _uniform(n, gen, *scale).view(n, 1, 1),
        "cx": _uniform(n, gen, *centre).view(n, 1, 1),
        "cy": _uniform(n, gen, *centre).view(n, 1, 1),
        "angle": _uniform(n, gen, 0.0, 2 * math.pi).view(n, 1, 1),
        "tilt": _uniform(n, gen, -0.35, 0.35).view(n, 1, 1),
        "period": _uniform(n, gen, 0.38, 0.55).view(n, 1, 1),
    }


def _shape_coverage(classes: torch.Tensor, pose: dict, grid: tuple, size: int) -> torch.Tensor:
    """Anti-aliased coverage (n,1,S,S) of each image's shape of class `classes[i]`."""
    x, y = grid
    oriented = (classes == SHAPE_CLASSES.index("hstripes")) | (
        classes == SHAPE_CLASSES.index("vstripes")
    )
    angle = torch.where(oriented.view(-1, 1, 1), pose["tilt"], pose["angle"])
    dx, dy = x - pose["cx"], y - pose["cy"]
    cos, sin = torch.cos(angle), torch.sin(angle)
    u = (cos * dx + sin * dy) / pose["scale"]
    v = (cos * dy - sin * dx) / pose["scale"]
    distance = torch.empty_like(u)
    for class_index, sdf in enumerate(SHAPE_SDFS):
        chosen = classes == class_index
        if chosen.any():
            distance[chosen] = sdf(u[chosen], v[chosen], pose["period"][chosen])
    return _coverage(distance * pose["scale"], size).unsqueeze(1)


def _coverage(distance: torch.Tensor, size: int) -> torch.Tensor:
    """Signed distance (image units, negative inside) to a one-pixel anti-aliased mask."""
    pixel = 2.0 / size
    return (0.5 - distance / pixel).clamp(0.0, 1.0)


def _stroke_coverage(n: int, grid: tuple, size: int, gen: torch.Generator) -> torch.Tensor:
    """Coverage of a random line segment about one pixel wide."""
    x, y = grid
    ends = (torch.rand(n, 4, generator=gen) * 2 - 1).view(n, 4, 1, 1)
    ax, ay, bx, by = ends.unbind(dim=1)
    ex, ey = bx - ax, by - ay
    t = (((x - ax) * ex + (y - ay) * ey) / (ex * ex + ey * ey + 1e-6)).clamp(0, 1)
    distance = torch.hypot(x - ax - t * ex, y - ay - t * ey) - 1.0 / size
    return _coverage(distance, size).unsqueeze(1)


# Signed distance functions in shape-local units (shapes fill roughly the unit disc).


def _box(u: torch.Tensor, v: torch.Tensor, half_w: float, half_h: float) -> torch.Tensor:
    qu, qv = u.abs() - half_w, v.abs() - half_h
    outside = torch.hypot(qu.clamp(min=0), qv.clamp(min=0))
    return outside + torch.maximum(qu, qv).clamp(max=0)


def _circle(u, v, period):
    return torch.hypot(u, v) - 0.8


def _square(u, v, period):
    return _box(u, v, 0.65, 0.65)


def _triangle(u, v, period):
    """Equilateral triangle with circumradius ~0.9, pointing up (-v)."""
    k = math.sqrt(3.0)
    half = 0.8
    pu, pv = u.abs() - half, -v + half / k
    fold = pu + k * pv > 0
    pu, pv = (
        torch.where(fold, (pu - k * pv) / 2, pu),
        torch.where(fold, (-k * pu - pv) / 2, pv),
    )
    pu = pu - pu.clamp(-2 * half, 0.0)
    return -torch.hypot(pu, pv) * torch.sign(pv)


def _star(u, v, period):
    """Five-pointed star as a radial profile (approximate distance)."""
    radius = torch.hypot(u, v)
    phase = torch.remainder(torch.atan2(v, u) * (5 / (2 * math.pi)), 1.0)
    spike = 1.0 - 2.0 * (phase - 0.5).abs()  # 1 at a tip, 0 between tips
    return (radius - (0.38 + 0.52 * (1.0 - spike))) * 0.7


def _cross(u, v, period):
    return torch.minimum(_box(u, v, 0.8, 0.22), _box(u, v, 0.22, 0.8))


def _ring(u, v, period):
    return (torch.hypot(u, v) - 0.62).abs() - 0.17


def _stripes(w, period):
    return ((torch.remainder(w / period, 1.0) - 0.5).abs() - 0.25) * period


def _hstripes(u, v, period):
    return torch.maximum(_box(u, v, 0.8, 0.8), _stripes(v, period))


def _vstripes(u, v, period):
    return torch.maximum(_box(u, v, 0.8, 0.8), _stripes(u, period))


def _checker(u, v, period):
    wave = torch.sin(math.pi * u / period) * torch.sin(math.pi * v / period)
    return torch.maximum(_box(u, v, 0.8, 0.8), -wave * period / math.pi)


def _dots(u, v, period):
    du = (torch.remainder(u / period, 1.0) - 0.5) * period
    dv = (torch.remainder(v / period, 1.0) - 0.5) * period
    return torch.maximum(_box(u, v, 0.8, 0.8), torch.hypot(du, dv) - 0.3 * period)


SHAPE_SDFS = (
    _circle, _square, _triangle, _star, _cross,
    _ring, _hstripes, _vstripes, _checker, _dots,
)


def _colour_jitter(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random brightness, contrast and saturation per image."""
    n = images.shape[0]
    images = images * _uniform(n, gen, 0.75, 1.25)
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    images = mean + (images - mean) * _uniform(n, gen, 0.7, 1.3)
    grey = images.mean(dim=1, keepdim=True)
    return grey + (images - grey) * _uniform(n, gen, 0.5, 1.5)
