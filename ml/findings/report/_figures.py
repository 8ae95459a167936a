"""Pictures for the inspection report: overlay thumbnails and the severity bar chart."""

from __future__ import annotations

import io

import numpy as np

from ml.findings.severity import SEVERITY_COLORS, Finding

__all__ = ["SEVERITY_COLORS", "overlay_thumbnail", "severity_chart"]
THUMB_SIDE = 900  # longest side of the overlay thumbnails, pixels


def _rgb(hex_color: str) -> tuple[int, int, int]:
    c = hex_color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def overlay_thumbnail(image: np.ndarray | None, label: np.ndarray,
                      palette: list[tuple[int, int, int]], boxes: list[tuple],
                      findings: list[Finding], alpha: float = 0.45) -> bytes:
    """JPEG of the photo with the mask tinted in class colours, the boxes and region numbers.

    Region numbers are 1-based positions in ``findings`` (the order of the report's table).
    ``image`` None (photo missing) draws on grey.
    """
    import cv2

    h, w = label.shape
    scale = min(1.0, THUMB_SIDE / max(h, w))
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    if image is None or image.shape[:2] != (h, w):
        base = np.full((th, tw, 3), 128, np.uint8)
    else:
        base = cv2.resize(image, (tw, th), interpolation=cv2.INTER_AREA)
    small = cv2.resize(label, (tw, th), interpolation=cv2.INTER_NEAREST)
    lut = np.zeros((256, 3), np.uint8)
    lut[: len(palette)] = palette
    tint = lut[small]
    fg = small > 0
    out = base.copy()
    out[fg] = (base[fg] * (1 - alpha) + tint[fg] * alpha).astype(np.uint8)
    for cls in np.unique(small[fg]):  # crisp outlines make thin defects readable
        edge, _ = cv2.findContours((small == cls).astype(np.uint8), cv2.RETR_LIST,
                                   cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, edge, -1, tuple(int(v) for v in lut[cls]), 1)
    for x0, y0, x1, y1, cls in boxes:
        color = tuple(int(v) for v in lut[cls]) if cls < len(palette) else (255, 255, 255)
        cv2.rectangle(out, (round(x0 * scale), round(y0 * scale)),
                      (round(x1 * scale) - 1, round(y1 * scale) - 1), color, 1, cv2.LINE_AA)
    for n, f in enumerate(findings, start=1):
        _tag(out, str(n), round(f.region.bbox[0] * scale), round(f.region.bbox[1] * scale))
    buf = io.BytesIO()
    from PIL import Image

    Image.fromarray(out).save(buf, format="JPEG", quality=85, optimize=True)
    return buf.getvalue()


def _tag(img: np.ndarray, text: str, x: int, y: int) -> None:
    """A small white-on-black number at (x, y), kept inside the image."""
    import cv2

    font, fs, th = cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1
    (tw, tht), base = cv2.getTextSize(text, font, fs, th)
    x = min(max(x, 0), max(img.shape[1] - tw - 4, 0))
    y = min(max(y - tht - 4, 0), max(img.shape[0] - tht - 4, 0))
    cv2.rectangle(img, (x, y), (x + tw + 3, y + tht + base + 2), (20, 20, 20), -1)
    cv2.putText(img, text, (x + 2, y + tht + 1), font, fs, (255, 255, 255), th, cv2.LINE_AA)


def severity_chart(findings: list[Finding], class_colors: dict[str, str]) -> bytes:
    """PNG bar chart: regions per severity level, stacked by class (matplotlib Agg)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 2.6), dpi=150)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    levels = np.arange(1, 6)
    bottom = np.zeros(5)
    names = sorted({f.class_name for f in findings}, key=list(class_colors).index)
    for name in names:
        counts = np.array([sum(1 for f in findings if f.class_name == name and f.severity == lv)
                           for lv in levels], float)
        ax.bar(levels, counts, bottom=bottom, color=class_colors.get(name, "#888888"),
               edgecolor="white", linewidth=0.6, label=name, width=0.62)
        bottom += counts
    for lv, total in zip(levels, bottom, strict=True):
        if total:
            ax.text(lv, total, f"{int(total)}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(levels, [f"{lv}" for lv in levels])
    for tick, lv in zip(ax.get_xticklabels(), levels, strict=True):
        tick.set_color(SEVERITY_COLORS[int(lv)])
        tick.set_fontweight("bold")
    ax.set_xlabel("Severity", fontsize=8)
    ax.set_ylabel("Defect regions", fontsize=8)
    ax.set_ylim(0, max(1.0, float(bottom.max()) * 1.18))
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.tick_params(labelsize=8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="y", color="#e0e0e0", linewidth=0.6)
    ax.set_axisbelow(True)
    if names:
        ax.legend(fontsize=7, frameon=False, loc="upper right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
