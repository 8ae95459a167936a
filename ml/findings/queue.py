"""The review queue: which proposal a person should decide next, and which photo to box next.

Order (active learning, not file order): first the proposals whose decision teaches the model
most, by :func:`teaching_value`, the largest of

* closeness to the threshold: 1 at the class's calibrated threshold, 0 at 0.25 away;
* the members' disagreement (std of their defect probability over the mask, 0.2 -> 1);
* the teacher's disagreement: 1 - IoU of the teacher run on the proposed box with the mask;

in steps of 0.1, then by suggested severity (most severe first), then the calibrated confidence.
"Photos to box next" (:func:`photos_to_box`) ranks the photos no person boxed by the share of
their pixels the model is unsure of, plus a little per proposal just under its threshold.

Bad input is named, not fatal: a photo whose file has gone is left out and listed in
``Queue.missing``; a proposal of a class the project no longer has stays in the queue marked
``class_missing`` (accepting it needs a class).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ml.findings.decisions import ACCEPTED, Decision, decisions, person_boxed
from ml.findings.severity import SeveritySettings, image_gsd, load_settings
from ml.prediction.proposals import FINDINGS_KEY, Proposal, stored_proposals
from ml.project.store import Project

NEAR = 0.25  # calibrated confidence this far from the threshold teaches nothing more
SPREAD_FULL = 0.2  # members' std at which their disagreement counts fully


@dataclass(frozen=True)
class QueueItem:
    key: str
    proposal: Proposal
    class_name: str
    priority: float  # teaching value in [0, 1]
    severity: int  # suggested 1-5
    reason: str  # what made the priority, in words
    decision: Decision | None = None
    class_missing: bool = False

    @property
    def id(self) -> str:
        """The proposal's id across the project: ``KEY:PID``."""
        return f"{self.key}:{self.proposal.id}"


@dataclass
class Queue:
    items: list[QueueItem] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # photos whose file has gone
    decided: int = 0

    def summary(self) -> str:
        missing = sum(i.class_missing for i in self.items)
        text = f"{len(self.items)} proposal(s) to review, {self.decided} decided"
        if missing:
            text += f"; {missing} of a class the project no longer has (accept with --class)"
        if self.missing:
            text += f"; {len(self.missing)} photo(s) missing on disk left out"
        return text


def split_id(text: str) -> tuple[str, str]:
    """``KEY:PID`` -> (KEY, PID); the last colon splits (a key may hold one)."""
    key, sep, pid = text.rpartition(":")
    if not sep or not key or not pid:
        raise ValueError(f"a proposal id is KEY:PID as 'b2p review --list' shows, got {text!r}")
    return key, pid


def teaching_value(p: Proposal) -> tuple[float, str]:
    """(value in [0, 1], the reason) of deciding ``p``."""
    parts = {"near the threshold": max(0.0, 1.0 - abs(p.calibrated - p.threshold) / NEAR)}
    if p.spread is not None:
        parts["members disagree"] = min(1.0, p.spread / SPREAD_FULL)
    if p.teacher_iou is not None:
        parts["teacher disagrees"] = 1.0 - p.teacher_iou
    reason = max(parts, key=parts.get)
    return round(parts[reason], 4), reason


def _overlap(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def review_queue(project: Project, include_decided: bool = False,
                 settings: SeveritySettings | None = None) -> Queue:
    """Every pending proposal of the project, the most teaching first."""
    settings = settings or load_settings(project)
    names = project.class_names()
    out = Queue()
    for key in project.keys():
        rec = project.record(key)
        if not (rec.findings.get(FINDINGS_KEY) or {}).get("items"):
            continue
        if not project.image_path(key).is_file():
            out.missing.append(key)
            continue
        done = decisions(project, key)
        out.decided += len(done)
        rejected = [d.box for d in done.values() if d.action != ACCEPTED]
        area = max(rec.width * rec.height, 1)
        for pid, p in stored_proposals(project, key).items():
            d = done.get(pid)
            if d is None and any(_overlap(p.box, b) > 0.3 for b in rejected):
                continue  # a new model's proposal where a person already said no
            if d is not None and not include_decided:
                continue
            missing = not 0 < p.cls < project.num_classes
            name = f"class {p.cls} (removed)" if missing else names[p.cls]
            severity = settings.suggest(name if not missing else "default", p.area, area,
                                        image_gsd(rec, None))
            value, reason = teaching_value(p)
            out.items.append(QueueItem(key, p, name, value, severity, reason, d, missing))
    out.items.sort(key=lambda i: (-round(i.priority, 1), -i.severity, -i.proposal.calibrated,
                                  i.key, i.proposal.id))
    return out


def file_order(project: Project) -> list[QueueItem]:
    """The pending proposals in project order, the baseline the queue is measured against."""
    q = review_queue(project)
    order = {k: i for i, k in enumerate(project.keys())}
    return sorted(q.items, key=lambda i: (order[i.key], i.proposal.box[1], i.proposal.box[0]))


def photos_to_box(project: Project, n: int | None = None) -> list[tuple[str, float]]:
    """(key, uncertainty) of photos no person boxed, the most uncertain first."""
    out = []
    for key in project.keys():
        rec = project.record(key)
        entry = rec.findings.get(FINDINGS_KEY)
        if not entry or person_boxed(project, key):
            continue
        score = float(entry.get("uncertainty", 0.0)) + 0.02 * int(entry.get("near_threshold", 0))
        out.append((key, round(score, 5)))
    out.sort(key=lambda t: -t[1])
    return out if n is None else out[:n]
