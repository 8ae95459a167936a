"""Work the Inspector starts on a whole project: export, report, and the unreadable photos."""

from __future__ import annotations

from ml.project.store import Project


def export_job(project, fmt, source, out, progress=None, should_stop=None):
    """Export the project's masks (run as a Job: torch-free until it starts)."""
    from ml.datasets.export import export_masks

    return export_masks(project, fmt, source, out, progress=progress, should_stop=should_stop)


def report_job(project, out, progress=None, should_stop=None):
    """Write the inspection report (run as a Job)."""
    from ml.findings.report import write_report

    return write_report(project, out, progress=progress, should_stop=should_stop)


def unreadable(project: Project) -> dict[str, str]:
    """Key -> reason for each photo of ``project`` whose size could not be read."""
    from ml.common.images import ImageError

    out = {}
    for key, rec in project.images.items():
        if not rec.width:
            try:
                project.image_size(key)
            except ImageError as e:
                out[key] = e.reason
    return out
