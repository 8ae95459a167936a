"""Synthetic blade inspection photos with exact defect masks and boxes, for demos and tests.

Each sample is a light, shaded, tapered turbine blade (leading edge along one side) on a sky,
overcast or ground background, at a random scale and orientation, with dirt (class 1: soft
blobs, streaks, bug splatter) and damage (class 2: cracks, leading-edge erosion, chips). Damage
is drawn after dirt and wins overlaps. Boxes are one per 8-connected component of each class.
Sensor noise and a JPEG round trip keep the edges from being trivially clean.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ml.common.atomic import atomic_write, atomic_write_json, atomic_write_text
from ml.common.classes import DEFAULT_CLASSES, palette
from ml.common.images import save_label
from ml.common.progress import ProgressFn, Reporter, StopFn
from ml.datasets.yolo import boxes_text
from ml.project.regions import boxes_from_mask
from ml.project.store import Box

DIRT, DAMAGE = 1, 2
CLASS_NAMES = ["background", "dirt", "damage"]
MIN_AREA = 6  # components smaller than this are dropped from the mask (no box for specks)
MIN_SIZE = 64
_ASPECTS = (1.0, 1.0, 1.25, 1.5, 0.75)  # width / height; non-square images on purpose


@dataclass
class Sample:
    name: str
    image: np.ndarray  # (H, W, 3) uint8 RGB
    mask: np.ndarray  # (H, W) uint8 class ids
    boxes: list[Box]


@dataclass
class _Blade:
    """Per-pixel blade coordinates: along-axis ``u`` (px), across ``t`` (-1 trailing, +1 leading
    edge), ``alpha`` coverage in [0, 1] and the local half-width (px)."""

    u: np.ndarray
    t: np.ndarray
    alpha: np.ndarray
    half: np.ndarray


# -- backgrounds and the blade ------------------------------------------------------------------

def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a coarse random grid upsampled with cubic interpolation."""
    ch, cw = max(2, round(cells * h / max(h, w))), max(2, round(cells * w / max(h, w)))
    grid = rng.random((ch, cw), dtype=np.float32)
    return np.clip(cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    kind = rng.choice(["sky", "sky", "overcast", "ground"])
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    if kind == "sky":
        top = np.array([70, 125, 200], np.float32) + rng.uniform(-15, 15, 3).astype(np.float32)
        bottom = np.array([175, 200, 225], np.float32) + rng.uniform(-10, 10, 3).astype(np.float32)
        img = top + (bottom - top) * y
        clouds = np.clip(_smooth_noise(rng, h, w, 6) * 1.6 - 0.7, 0, 1)[..., None]
        return img * (1 - clouds * 0.8) + 235.0 * clouds * 0.8
    if kind == "overcast":
        base = rng.uniform(150, 200) + rng.uniform(-6, 6, 3).astype(np.float32)
        return base + 25.0 * (_smooth_noise(rng, h, w, 4)[..., None] - 0.5) - 15.0 * y
    base = np.array([95, 110, 70], np.float32) if rng.random() < 0.6 else \
        np.array([125, 108, 82], np.float32)
    tex = (0.6 * _smooth_noise(rng, h, w, 5) + 0.3 * _smooth_noise(rng, h, w, 40)
           + 0.1 * rng.random((h, w), dtype=np.float32))
    return base * (0.6 + 0.8 * tex[..., None])


def _blade_geometry(rng: np.random.Generator, h: int, w: int) -> _Blade:
    s = min(h, w)
    # python floats keep the per-pixel maths in float32 (numpy scalars would promote to f64)
    theta = float(rng.uniform(-np.pi, np.pi))
    cx, cy = w * float(rng.uniform(0.35, 0.65)), h * float(rng.uniform(0.35, 0.65))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c, sn = float(np.cos(theta)), float(np.sin(theta))
    u = (xx - cx) * c + (yy - cy) * sn
    v = -(xx - cx) * sn + (yy - cy) * c
    w_c = s * float(rng.uniform(0.1, 0.36))  # half-width at the image centre: the scale of the shot
    taper = float(rng.uniform(0.1, 0.45))
    half = w_c * np.exp(-taper * u / s)  # smooth taper towards the tip, never negative
    tip = float(rng.uniform(0.25, 1.2) * np.hypot(h, w))  # sometimes the tip is inside the frame
    # rounded tip: the width falls smoothly to 0 at u == tip (no kink where rounding starts)
    half_eff = half * np.sqrt(np.clip(1.0 - np.exp(-(tip - u) / w_c), 0.0, 1.0))
    centre = w_c - half  # keeps the leading edge straight while the trailing edge tapers
    t = (v - centre) / np.maximum(half_eff, 1e-3)
    alpha = np.clip((1.0 - np.abs(t)) * half_eff + 0.5, 0.0, 1.0) * np.clip(half_eff, 0.0, 1.0)
    return _Blade(u, np.clip(t, -2.0, 2.0), alpha, half_eff)


def _blade_colour(rng: np.random.Generator, blade: _Blade, s: int) -> np.ndarray:
    """Shaded blade surface: rounded, lit leading edge, darker thin trailing edge."""
    t = blade.t
    shade = 0.80 + 0.12 * np.cos(np.pi / 2 * (t - 0.35) / 1.35)
    shade += 0.07 * np.exp(-(((t - 0.72) / 0.07) ** 2))  # highlight on the rounded nose
    shade *= 1.0 - 0.30 * np.clip((t - 0.82) / 0.18, 0, 1) ** 2  # nose turns away from light
    shade *= 1.0 - 0.18 * np.clip((-t - 0.6) / 0.4, 0, 1)
    shade -= 0.035 * np.exp(-(((t + 0.25) / 0.015) ** 2))  # a faint shell seam
    shade *= 1.0 + float(rng.uniform(-0.12, 0.12)) * blade.u / s
    h, w = t.shape
    shade += 0.05 * (_smooth_noise(rng, h, w, 12) - 0.5)
    tint = np.array([228, 231, 233], np.float32) * float(rng.uniform(0.82, 1.05))
    tint += rng.uniform(-6, 6, 3).astype(np.float32)
    return np.clip(shade, 0.3, 1.1)[..., None] * tint


# -- defects ------------------------------------------------------------------------------------

def _pick(rng: np.random.Generator, blade: _Blade, t_lo: float, t_hi: float) -> tuple[int, int]:
    """A random pixel on the blade with ``t`` in [t_lo, t_hi] (x, y)."""
    ok = np.flatnonzero((blade.alpha >= 1.0) & (blade.t >= t_lo) & (blade.t <= t_hi))
    if ok.size == 0:
        ok = np.flatnonzero(blade.alpha >= 0.5)
    i = int(ok[rng.integers(ok.size)])
    return i % blade.t.shape[1], i // blade.t.shape[1]


class _Canvas:
    """The photo being painted, its class mask and the blade coverage that clips defects."""

    def __init__(self, img: np.ndarray, blade: _Blade) -> None:
        self.img = img
        self.mask = np.zeros(img.shape[:2], np.uint8)
        self.blade = blade

    def apply(self, alpha: np.ndarray, x0: int, y0: int, cls: int, colour: np.ndarray,
              opacity: float | np.ndarray, multiply: bool) -> None:
        """Paint a local shape (``alpha`` in [0, 1] placed at x0, y0) and label where >= 0.5."""
        h, w = self.mask.shape
        ah, aw = alpha.shape
        xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + aw, w), min(y0 + ah, h)
        if xa >= xb or ya >= yb:
            return
        a = alpha[ya - y0:yb - y0, xa - x0:xb - x0]
        if isinstance(opacity, np.ndarray):
            opacity = opacity[ya - y0:yb - y0, xa - x0:xb - x0]
        region = (slice(ya, yb), slice(xa, xb))
        cover = self.blade.alpha[region]
        k = (a * cover * opacity)[..., None]
        col = colour if colour.ndim == 1 else colour[ya - y0:yb - y0, xa - x0:xb - x0]
        if multiply:  # stains darken the shading underneath instead of hiding it
            self.img[region] *= 1.0 - k * (1.0 - col / 255.0)
        else:
            self.img[region] = self.img[region] * (1.0 - k) + col * k
        self.mask[region][(a >= 0.5) & (cover >= 0.5)] = cls


def _patch(r: float) -> tuple[np.ndarray, int]:
    n = int(np.ceil(r)) * 2 + 7
    return np.zeros((n, n), np.float32), n // 2


def _blob(rng: np.random.Generator, cv: _Canvas, k: float) -> None:
    r = rng.uniform(8, 38) * k
    canvas, c = _patch(r * 1.6)
    for _ in range(rng.integers(2, 5)):
        centre = (int(c + rng.normal(0, r / 3)), int(c + rng.normal(0, r / 3)))
        axes = (max(2, int(r * rng.uniform(0.3, 0.7))), max(2, int(r * rng.uniform(0.2, 0.6))))
        cv2.ellipse(canvas, centre, axes, rng.uniform(0, 180), 0, 360, 1.0, -1, cv2.LINE_AA)
    alpha = cv2.GaussianBlur(canvas, (0, 0), max(r / 5, 1.0))
    grain = 0.75 + 0.25 * rng.random(canvas.shape, dtype=np.float32)
    x, y = _pick(rng, cv.blade, -0.85, 0.85)
    colour = np.array([115, 100, 80], np.float32) * rng.uniform(0.7, 1.1)
    cv.apply(alpha, x - c, y - c, DIRT, colour, rng.uniform(0.4, 0.75) * grain, True)


def _streak(rng: np.random.Generator, cv: _Canvas, k: float) -> None:
    length = rng.uniform(30, 110) * k
    canvas, c = _patch(length * 0.6)
    ang = rng.uniform(0, 2 * np.pi)
    d = np.array([np.cos(ang), np.sin(ang)])
    p0 = np.array([c, c]) - d * length / 2
    thick = rng.uniform(3, 9) * k
    for i in range(4):  # tapering stroke: the streak thins out where it ran
        a, b = p0 + d * length * i / 4, p0 + d * length * (i + 1) / 4
        cv2.line(canvas, tuple(int(v) for v in a), tuple(int(v) for v in b), 1.0,
                 max(1, int(thick * (1 - i / 5))), cv2.LINE_AA)
    alpha = cv2.GaussianBlur(canvas, (0, 0), max(thick / 4, 0.8))
    x, y = _pick(rng, cv.blade, -0.8, 0.8)
    colour = np.array([105, 95, 80], np.float32)
    cv.apply(alpha, x - c, y - c, DIRT, colour, rng.uniform(0.4, 0.7), True)


def _splatter(rng: np.random.Generator, cv: _Canvas, k: float) -> None:
    spread = rng.uniform(8, 25) * k
    canvas, c = _patch(spread * 2.5)
    for _ in range(rng.integers(3, 9)):
        p = (int(c + rng.normal(0, spread)), int(c + rng.normal(0, spread)))
        cv2.circle(canvas, p, max(2, int(rng.uniform(1.5, 4.0) * k)), 1.0, -1, cv2.LINE_AA)
    x, y = _pick(rng, cv.blade, 0.55, 0.95)  # insects hit the leading edge
    cv.apply(canvas, x - c, y - c, DIRT, np.array([60, 50, 40], np.float32), 0.85, True)


def _crack(rng: np.random.Generator, cv: _Canvas, k: float) -> None:
    steps = rng.integers(4, 10)
    seg = rng.uniform(6, 18) * k
    canvas, c = _patch(steps * seg)
    ang, p = rng.uniform(0, 2 * np.pi), np.array([c, c], float)
    pts = [p.copy()]
    for _ in range(steps):
        ang += rng.normal(0, 0.45)
        p = p + seg * np.array([np.cos(ang), np.sin(ang)])
        pts.append(p.copy())
    thick = max(2, int(round(rng.uniform(1.5, 3.5) * k)))
    poly = np.round(np.array(pts)).astype(np.int32)
    cv2.polylines(canvas, [poly], False, 1.0, thick, cv2.LINE_AA)
    if rng.random() < 0.4:  # a side branch
        j = int(rng.integers(1, len(pts) - 1))
        tip = pts[j] + seg * 2 * np.array([np.cos(ang + 1.0), np.sin(ang + 1.0)])
        branch = np.round(np.array([pts[j], tip])).astype(np.int32)
        cv2.polylines(canvas, [branch], False, 1.0, max(2, thick - 1), cv2.LINE_AA)
    x, y = _pick(rng, cv.blade, -0.7, 0.8)
    cv.apply(canvas, x - c, y - c, DAMAGE, np.array([45, 42, 45], np.float32), 0.85, True)


def _chip(rng: np.random.Generator, cv: _Canvas, k: float) -> None:
    r = rng.uniform(5, 16) * k
    canvas, c = _patch(r * 1.4)
    n = int(rng.integers(5, 10))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = r * rng.uniform(0.55, 1.3, n)
    poly = np.stack([c + radii * np.cos(angles), c + radii * np.sin(angles)], 1)
    poly = np.round(poly).astype(np.int32)
    cv2.fillPoly(canvas, [poly], 1.0, cv2.LINE_AA)
    rim = np.zeros_like(canvas)
    cv2.polylines(rim, [poly], True, 1.0, max(1, int(k)), cv2.LINE_AA)
    colour = np.empty(canvas.shape + (3,), np.float32)
    colour[:] = np.array([175, 163, 135], np.float32) * rng.uniform(0.75, 1.0)
    colour *= (1.0 - 0.55 * rim)[..., None]  # a dark broken rim around the exposed laminate
    x, y = _pick(rng, cv.blade, -0.8, 0.95)
    cv.apply(canvas, x - c, y - c, DAMAGE, colour, 0.95, False)


def _erosion(rng: np.random.Generator, cv: _Canvas, k: float) -> None:
    """A rough band along the leading edge with pitted lighter and darker texture."""
    b = cv.blade
    x, y = _pick(rng, b, 0.9, 0.98)
    u0, length = b.u[y, x], rng.uniform(60, 280) * k
    depth_px = rng.uniform(4, 14) * k
    lo, hi = u0 - length / 2, u0 + length / 2
    knots = np.linspace(lo, hi, max(4, int(length / (6 * k))))
    rough = depth_px * (0.3 + rng.random(knots.size))
    rough[[0, -1]] = 0.0  # the band fades out at both ends
    depth = np.interp(b.u, knots, rough, left=0.0, right=0.0).astype(np.float32)
    dist = (1.0 - b.t) * b.half  # px from the leading edge
    band = ((dist < depth) & (b.u > lo) & (b.u < hi)).astype(np.float32)
    ys, xs = np.nonzero(band)
    if ys.size == 0:
        return
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    alpha = cv2.GaussianBlur(band[y0:y1, x0:x1], (0, 0), 0.7)
    h, w = alpha.shape
    pits = rng.random((h, w), dtype=np.float32)
    pits = cv2.GaussianBlur(pits, (0, 0), 0.8)
    light = np.array([205, 198, 178], np.float32)
    dark = np.array([120, 118, 112], np.float32)
    mix = np.clip((pits - 0.5) * 6 + 0.5, 0, 1)[..., None]
    colour = light * mix + dark * (1 - mix)
    cv.apply(alpha, int(x0), int(y0), DAMAGE, colour, 0.8, False)


_DIRT_MAKERS = (_blob, _blob, _streak, _splatter)
_DAMAGE_MAKERS = (_crack, _crack, _chip, _erosion)


# -- finishing, boxes and the public API --------------------------------------------------------

def _finish(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Vignetting, optional defocus, sensor noise and a JPEG round trip."""
    h, w = img.shape[:2]
    yy, xx = np.ogrid[-1:1:complex(0, h), -1:1:complex(0, w)]
    img *= (1.0 - rng.uniform(0.0, 0.18) * (xx ** 2 + yy ** 2) / 2).astype(np.float32)[..., None]
    if rng.random() < 0.35:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.0))
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(rng.uniform(1.5, 4.5))
    out = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY,
                                                   int(rng.integers(55, 86))])
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]) if ok else out


def mask_boxes(mask: np.ndarray, min_area: int = MIN_AREA) -> list[Box]:
    """One tight box per 8-connected component of each class; smaller specks are erased."""
    for cls in range(1, int(mask.max(initial=0)) + 1):
        n, comp, stats, _ = cv2.connectedComponentsWithStats((mask == cls).astype(np.uint8),
                                                             connectivity=8)
        specks = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] < min_area)
        mask[np.isin(comp, specks[specks > 0])] = 0
    return boxes_from_mask(mask, by_class=True)


def make_sample(rng: np.random.Generator, size: int = 512, name: str = "") -> Sample:
    """One synthetic photo about ``size`` px high (width varies) with its mask and boxes."""
    if size < MIN_SIZE:
        raise ValueError(f"size must be at least {MIN_SIZE} px, got {size}")
    h = size
    w = max(MIN_SIZE, int(round(size * float(rng.choice(_ASPECTS)))))
    k = min(h, w) / 512.0  # defect sizes follow the image scale
    blade = _blade_geometry(rng, h, w)
    a = blade.alpha[..., None]
    img = (_background(rng, h, w) * (1 - a) + _blade_colour(rng, blade, min(h, w)) * a)
    cv = _Canvas(img.astype(np.float32), blade)
    if rng.random() > 0.12:  # some photos are clean
        n_dirt, n_damage = rng.poisson(2.5), rng.poisson(1.8)
        if n_dirt + n_damage == 0:
            n_damage = 1
        for _ in range(n_dirt):
            _DIRT_MAKERS[rng.integers(len(_DIRT_MAKERS))](rng, cv, k)
        for _ in range(n_damage):  # after dirt, so damage wins overlaps
            _DAMAGE_MAKERS[rng.integers(len(_DAMAGE_MAKERS))](rng, cv, k)
    image = _finish(rng, cv.img)
    boxes = mask_boxes(cv.mask)
    return Sample(name, image, cv.mask, boxes)


def sample_name(i: int) -> str:
    return f"synth_{i:04d}"


def generate(n: int = 8, size: int = 512, seed: int = 0) -> list[Sample]:
    """``n`` samples; sample i depends only on (seed, i), so a longer set extends a shorter one."""
    return [make_sample(np.random.default_rng([seed, i]), size, sample_name(i)) for i in range(n)]


def _save_jpeg(path: Path, image: np.ndarray, quality: int = 92) -> None:
    from PIL import Image

    atomic_write(path, lambda fh: Image.fromarray(image).save(fh, format="JPEG",
                                                              quality=quality))


def write_dataset(out: Path, n: int = 8, size: int = 512, seed: int = 0,
                  progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> Path:
    """Write images/, masks/, labels/ (YOLO) and dataset.json under ``out``; return ``out``.

    Stopping early keeps the finished samples and writes a dataset.json that counts them.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder")
    rep = Reporter(n, progress, should_stop)
    pal = palette(DEFAULT_CLASSES)
    done = 0
    for i in range(n):
        if rep.stopped():
            break
        s = make_sample(np.random.default_rng([seed, i]), size, sample_name(i))
        h, w = s.mask.shape
        _save_jpeg(out / "images" / f"{s.name}.jpg", s.image)
        save_label(out / "masks" / f"{s.name}.png", s.mask, pal)
        atomic_write_text(out / "labels" / f"{s.name}.txt", boxes_text(s.boxes, w, h))
        done += 1
        rep.step(message=s.name, boxes=len(s.boxes))
    atomic_write_json(out / "dataset.json", dataset_info(done, size, seed))
    return out


def dataset_info(n: int, size: int, seed: int) -> dict:
    return {"name": "synthetic_blades", "classes": list(CLASS_NAMES), "images": "images/",
            "masks": "masks/ (class ids)", "labels": "labels/ (YOLO, 0=dirt 1=damage)",
            "source": f"synthetic (ml.datasets.synthetic, seed {seed})", "license": "generated",
            "n": n, "size": size}
