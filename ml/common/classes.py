"""Defect classes of a project: ids, names and display colours."""

from __future__ import annotations

from dataclasses import asdict, dataclass

# Distinct, colour-blind-friendly-ish defaults for up to 10 defect classes.
_PALETTE = ["#f0b400", "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4",
            "#42d4f4", "#f032e6", "#bfef45", "#9a6324"]
BACKGROUND = "background"
IGNORE = 255  # label value of pixels that count nowhere (padding outside the image)


@dataclass(frozen=True)
class ClassInfo:
    id: int
    name: str
    color: str  # "#rrggbb"

    def rgb(self) -> tuple[int, int, int]:
        c = self.color.lstrip("#")
        return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> ClassInfo:
        return cls(int(d["id"]), str(d["name"]), str(d.get("color", "#ffffff")))


def make_classes(defect_names: list[str]) -> list[ClassInfo]:
    """Background (id 0) followed by the given defect classes with default colours."""
    names = [n.strip() for n in defect_names if n.strip()]
    if not names:
        raise ValueError("at least one defect class is needed")
    if len(set(names)) != len(names) or BACKGROUND in names:
        raise ValueError(f"class names must be unique and not '{BACKGROUND}': {names}")
    out = [ClassInfo(0, BACKGROUND, "#000000")]
    for i, n in enumerate(names, start=1):
        out.append(ClassInfo(i, n, _PALETTE[(i - 1) % len(_PALETTE)]))
    return out


DEFAULT_CLASSES = make_classes(["dirt", "damage"])


def palette(classes: list[ClassInfo]) -> list[tuple[int, int, int]]:
    """RGB per class id, for palette PNGs and overlays."""
    out = [(0, 0, 0)] * (max(c.id for c in classes) + 1)
    for c in classes:
        out[c.id] = c.rgb()
    return out


def default_class_weights(num_classes: int) -> tuple[float, ...]:
    """The paper's (0.4, 4, 4) generalised: 0.4 for background, 4 for every defect class."""
    return (0.4,) + (4.0,) * (num_classes - 1)
