"""The same blades photographed in two inspections, with every change known (history tests).

Each *spot* (turbine, blade, side, a station radius) has one surface in blade coordinates
(a patch of :data:`WORLD_MM` mm per pixel: the blade as a tapering band with shading, specks,
seams and stencils that stay put from year to year) and defects placed on it. Each inspection
photographs the spot through a known homography: the photo's centre at a known radius (the
second year shifted by up to a few tenths of a metre), its own GSD (the drone flew closer or
farther), a small rotation and a mild perspective; the light and the sky change too.

Defects change by known factors between the years: ``grown`` (area × 1.5-2.2), ``stable``
(× 1), ``shrunk`` (× 0.55, a partial repair), ``new`` (second year only) and ``gone``
(first year only: repaired, painted over). :class:`HistorySet` holds the photos, their label
maps and instance maps, and the truth: each photo's radius, GSD and axis, each defect's radius
and area in mm² per year.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ml.datasets.synthetic import DAMAGE, _smooth_noise

WORLD_MM = 2.5  # mm per pixel of the blade-coordinate patch
WORLD_PX = 960  # the patch is WORLD_PX square: 2.4 m along and across
PHOTO_WH = (640, 480)
BLADE_LENGTH_M = 30.0
HUB_HEIGHT_M = 90.0
DATES = ("2024-06-10", "2025-06-18")
FACTORS = {"grown": (1.5, 2.2), "stable": (1.0, 1.0), "shrunk": (0.55, 0.55)}


@dataclass
class Photo:
    key: str
    year: int  # 0 or 1
    turbine: str
    blade: str
    side: str
    radius_m: float  # at the photo's centre (true)
    gsd_mm: float  # at the photo's centre (true)
    axis_deg: float  # root -> tip in the image (x right, y down)
    image: np.ndarray
    label: np.ndarray  # uint8 class ids
    instances: np.ndarray  # int32: defect index + 1, 0 elsewhere
    homography: np.ndarray  # world patch px -> photo px


@dataclass
class Defect:
    index: int
    turbine: str
    blade: str
    side: str
    status: str  # grown | stable | shrunk | new | gone
    factor: float  # area second year / first year (1 for new and gone)
    radius_m: tuple[float | None, float | None]  # per year, None where absent
    area_mm2: tuple[float | None, float | None]


@dataclass
class HistorySet:
    photos: list[Photo] = field(default_factory=list)
    defects: list[Defect] = field(default_factory=list)
    dates: tuple[str, str] = DATES


def _world_to_photo(radius_spot: float, radius_photo: float, gsd: float, theta_deg: float,
                    persp: tuple[float, float]) -> np.ndarray:
    """3x3 homography: world patch px (centre at ``radius_spot``) -> photo px."""
    w, h = PHOTO_WH
    c = WORLD_PX / 2
    to_m = np.array([[WORLD_MM / 1000, 0, -c * WORLD_MM / 1000],
                     [0, WORLD_MM / 1000, -c * WORLD_MM / 1000 + radius_spot - radius_photo],
                     [0, 0, 1]])
    t = math.radians(theta_deg)
    rot = np.array([[math.cos(t), -math.sin(t), 0], [math.sin(t), math.cos(t), 0], [0, 0, 1]])
    scale = np.diag([1000 / gsd, 1000 / gsd, 1.0])
    proj = np.array([[1, 0, 0], [0, 1, 0], [persp[0], persp[1], 1]])
    centre = np.array([[1, 0, w / 2 - 0.5], [0, 1, h / 2 - 0.5], [0, 0, 1]])
    return centre @ proj @ scale @ rot @ to_m


def _surface(rng: np.random.Generator, chord_m: float) -> tuple[np.ndarray, np.ndarray]:
    """The blade patch (RGB float) and its coverage: a vertical band, lit, with fixed marks."""
    n = WORLD_PX
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    half = chord_m * 1000 / WORLD_MM / 2 * (1.0 - 0.08 * (yy - n / 2) / n)  # tapers to the tip
    t = (xx - n / 2) / half
    alpha = np.clip((1.0 - np.abs(t)) * half / 2 + 0.5, 0, 1)
    shade = 0.82 + 0.12 * np.cos(np.pi / 2 * t) + 0.06 * (_smooth_noise(rng, n, n, 10) - 0.5)
    # weathering at several scales: the unique texture features are found in
    shade += 0.10 * (_smooth_noise(rng, n, n, 90) - 0.5) + 0.06 * (_smooth_noise(rng, n, n, 240)
                                                                  - 0.5)
    img = np.clip(shade, 0.3, 1.1)[..., None] * np.array([226, 229, 232], np.float32)
    for _ in range(int(rng.integers(350, 500))):  # specks and smudges of many shapes
        x, y = int(rng.integers(0, n)), int(rng.integers(0, n))
        tone = float(rng.uniform(60, 170))
        pts = np.array([x, y]) + _shape(rng, float(rng.uniform(1.5, 7))).astype(np.int32)
        cv2.fillPoly(img, [pts], (tone, tone * 0.95, tone * 0.9), cv2.LINE_AA)
    for _ in range(int(rng.integers(4, 8))):  # stencils and tape marks
        x, y = int(rng.integers(n // 3, 2 * n // 3)), int(rng.integers(0, n))
        bw, bh = int(rng.integers(10, 40)), int(rng.integers(4, 30))
        tone = float(rng.uniform(40, 120))
        cv2.rectangle(img, (x, y), (x + bw, y + bh), (tone, tone, tone + 20), -1)
    seam = (np.abs(t + 0.3) < 0.01).astype(np.float32)[..., None]
    img = img * (1 - 0.15 * seam)
    return img, alpha


def _shape(rng: np.random.Generator, r_px: float) -> np.ndarray:
    """A defect outline (N, 2) around the origin, about ``r_px`` in radius."""
    k = int(rng.integers(7, 12))
    ang = np.linspace(0, 2 * np.pi, k, endpoint=False) + rng.uniform(-0.3, 0.3, k) * 2 * np.pi / k
    radii = r_px * rng.uniform(0.7, 1.25, k)
    aspect = float(rng.uniform(1.0, 1.8))
    return np.stack([radii * np.cos(ang), aspect * radii * np.sin(ang)], 1)


def _sky(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    top = np.array([70, 125, 200], np.float32) + rng.uniform(-15, 15, 3).astype(np.float32)
    bottom = np.array([170, 195, 225], np.float32)
    img = top + (bottom - top) * y
    clouds = np.clip(_smooth_noise(rng, h, w, 5) * 1.4 - 0.6, 0, 1)[..., None]
    return img * (1 - clouds * 0.7) + 235.0 * clouds * 0.7


def make_history(seed: int = 0, turbine: str = "WTG01", blades: tuple[str, ...] = ("A", "B"),
                 stations: tuple[float, ...] = (6.0, 14.0, 22.0),
                 side: str = "pressure_side") -> HistorySet:
    """Two inspections of ``blades`` x ``stations``: photos, masks and the truth."""
    rng = np.random.default_rng(seed)
    out = HistorySet()
    plan = (("grown", "stable"), ("new", "gone"), ("shrunk", "grown"))
    for bi, b in enumerate(blades):
        for si, station in enumerate(stations):
            world, cover = _surface(rng, 1.3 - 0.02 * station)
            specs = []  # (polygon centred at 0, centre xy, status, factor)
            placed: list[np.ndarray] = []
            for status in plan[(si + bi) % len(plan)]:
                lo, hi = FACTORS.get(status, (1.0, 1.0))
                factor = float(rng.uniform(lo, hi))
                r_px = float(rng.uniform(14, 24))
                for _ in range(100):
                    c = np.array([WORLD_PX / 2 + rng.uniform(-90, 90),
                                  WORLD_PX / 2 + rng.uniform(-150, 150)])
                    if all(np.linalg.norm(c - p) > 7 * r_px for p in placed):
                        break
                placed.append(c)
                specs.append((_shape(rng, r_px), c, status, factor))
            theta = (float(rng.uniform(-2, 2)), float(rng.uniform(-6, 6)))
            shift = (0.0, round(float(rng.uniform(-0.2, 0.2)), 1))
            gsds = (3.0, float(rng.uniform(3.2, 3.6)))
            persp = ((0.0, 0.0), (float(rng.uniform(-4e-5, 4e-5)),
                                  float(rng.uniform(-4e-5, 4e-5))))
            defects = [Defect(len(out.defects) + i, turbine, b, side, s, f
                              if s not in ("new", "gone") else 1.0, (None, None), (None, None))
                       for i, (_, _, s, f) in enumerate(specs)]
            for year in (0, 1):
                img = world.copy()
                inst = np.zeros((WORLD_PX, WORLD_PX), np.int32)
                for d, (poly, c, status, factor) in zip(defects, specs, strict=True):
                    present = not ((status == "new" and year == 0)
                                   or (status == "gone" and year == 1))
                    scale = math.sqrt(factor) if year == 1 and status != "new" else 1.0
                    pts = np.round(poly * scale + c).astype(np.int32)
                    if status == "gone" and year == 1:  # the repair: a lighter filled patch
                        cv2.fillPoly(img, [np.round(poly * 1.3 + c).astype(np.int32)],
                                     (238, 238, 236))
                    if not present:
                        continue
                    local = np.zeros_like(inst, np.uint8)
                    cv2.fillPoly(local, [pts], 1)
                    tone = rng.uniform(70, 110)
                    noise = rng.uniform(0.8, 1.2, local.shape).astype(np.float32)
                    col = np.array([tone * 1.1, tone, tone * 0.85], np.float32)
                    m = local.astype(bool)
                    img[m] = col * noise[m][:, None]
                    inst[m] = d.index + 1
                    ys, xs = np.nonzero(m)
                    r_true = station + (ys.mean() - (WORLD_PX - 1) / 2) * WORLD_MM / 1000
                    rad, area = list(d.radius_m), list(d.area_mm2)
                    rad[year], area[year] = float(r_true), float(m.sum() * WORLD_MM ** 2)
                    d.radius_m, d.area_mm2 = tuple(rad), tuple(area)
                out.photos.append(_photo(rng, world_img=img, cover=cover, inst=inst, year=year,
                                         turbine=turbine, blade=b, side=side, station=station,
                                         radius=station + shift[year], gsd=gsds[year],
                                         theta=theta[year], persp=persp[year]))
            out.defects += defects
    return out


def _photo(rng: np.random.Generator, *, world_img: np.ndarray, cover: np.ndarray,
           inst: np.ndarray, year: int, turbine: str, blade: str, side: str, station: float,
           radius: float, gsd: float, theta: float, persp: tuple[float, float]) -> Photo:
    w, h = PHOTO_WH
    hmat = _world_to_photo(station, radius, gsd, theta, persp)
    blade_px = cv2.warpPerspective(world_img, hmat, (w, h), flags=cv2.INTER_AREA)
    a = cv2.warpPerspective(cover, hmat, (w, h), flags=cv2.INTER_LINEAR)[..., None]
    sky = _sky(rng, h, w)
    img = sky * (1 - a) + blade_px * a
    img = img * float(rng.uniform(0.85, 1.1)) + rng.normal(0, 2.5, img.shape)  # light, noise
    image = np.clip(img, 0, 255).astype(np.uint8)
    ids = cv2.warpPerspective(inst.astype(np.float32), hmat, (w, h), flags=cv2.INTER_NEAREST)
    ids = ids.astype(np.int32)
    ids[a[..., 0] < 0.5] = 0
    label = np.where(ids > 0, DAMAGE, 0).astype(np.uint8)
    folder = f"{DATES[year]}/{turbine}/{blade}/PS/{radius:.1f}m"
    key = f"{folder}/{blade}_{station:04.1f}_{year}.jpg"
    return Photo(key, year, turbine, blade, side, radius, gsd, 90.0 + theta, image, label, ids,
                 hmat)


def write_history(out: Path, seed: int = 0) -> tuple[HistorySet, Path]:
    """Write photos/KEY (JPEG), masks/KEY.png (class ids) and truth.json under ``out``."""
    from ml.common.atomic import atomic_write, atomic_write_json
    from ml.common.classes import DEFAULT_CLASSES, palette
    from ml.common.images import save_label

    hs = make_history(seed)
    out = Path(out)
    pal = palette(DEFAULT_CLASSES)
    for p in hs.photos:
        from PIL import Image

        atomic_write(out / "photos" / p.key,
                     lambda fh, im=p.image: Image.fromarray(im).save(fh, format="JPEG",
                                                                     quality=93))
        save_label(out / "masks" / f"{p.key}.png", p.label, pal)
    truth = {"seed": seed, "dates": list(hs.dates), "blade_length_m": BLADE_LENGTH_M,
             "hub_height_m": HUB_HEIGHT_M,
             "photos": [{"key": p.key, "year": p.year, "radius_m": p.radius_m,
                         "gsd_mm": p.gsd_mm, "axis_deg": p.axis_deg} for p in hs.photos],
             "defects": [asdict(d) for d in hs.defects]}
    atomic_write_json(out / "truth.json", truth)
    return hs, out
