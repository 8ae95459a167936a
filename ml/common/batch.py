"""What a batch job did with each item, in one shape for every job.

Scan, import, pseudo-label, predict and export all return a :class:`BatchResult` (or a subclass
adding the job's own figures), so the CLI and the GUI report them the same way: items done,
items that failed with the reason, items skipped with the reason, and whether it was stopped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class BatchResult:
    """Outcome of a batch over ``total`` items (image keys); failures never end the batch."""

    action: str  # past tense, for the summary: "pseudo-labelled", "exported", ...
    total: int
    done: tuple[str, ...] = ()
    failed: Mapping[str, str] = field(default_factory=dict)  # key -> why it failed
    skipped: Mapping[str, str] = field(default_factory=dict)  # key -> why it was left out
    stopped: bool = False
    warnings: tuple[str, ...] = ()  # notes not tied to one item (a bad label line, ...)

    def skipped_for(self, reason: str) -> list[str]:
        """Keys skipped for ``reason``."""
        return [k for k, why in self.skipped.items() if why == reason]

    def problems(self) -> list[str]:
        """One ``key: reason`` line per failed item."""
        return [f"{k}: {why}" for k, why in self.failed.items()]

    def summary(self) -> str:
        """One line: counts of done, skipped (by reason), failed, and a stop."""
        parts = [f"{len(self.done)} of {self.total} {self.action}"]
        if self.skipped:
            reasons = Counter(self.skipped.values())
            parts.append(f"{len(self.skipped)} skipped (" + ", ".join(
                f"{n} {why}" for why, n in sorted(reasons.items())) + ")")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        if self.warnings:
            parts.append(f"{len(self.warnings)} warnings")
        if self.stopped:
            parts.append("stopped early")
        return "; ".join(parts)
