"""The HTML report in a real headless Chromium: offline, no console errors, prints cleanly.

The browser tests skip, naming the package, where no Chromium is installed (``.ci/run`` installs
it from ``.ci/browser-packages.txt``; under CI a missing browser fails instead).
"""

from __future__ import annotations

import csv
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from ml.findings.report import write_report
from ml.findings.severity import DEFAULT_PATH, PROJECT_FILE
from ml.project.store import Box, Project
from tests import _browser
from tests.conftest import write_photo

A4 = {"paperWidth": 8.27, "paperHeight": 11.69, "printBackground": True}
N_IMAGES = 12  # enough image sections that page ends fall inside some of them
# A site's own wording, long enough that a table row spans several lines (a row of two or three
# lines never splits: widows and orphans keep two lines together anyway)
LONG_ACTION = ("Document only; photograph again from the same position at the next inspection, "
               "compare with this photo and note in the blade log whether it grew, moved or "
               "washed off; no repair needed while it stays cosmetic")


def _label(i: int) -> np.ndarray:
    """Two to four regions per photo, placed differently on each (distinct boxes)."""
    lab = np.zeros((48, 64), np.uint8)
    lab[2 + i % 5:10 + i % 5, 3 + i:14 + i] = 2
    lab[30:34 + i % 3, 40:46 + i % 7] = 1
    for j in range(i % 3):
        lab[16 + 8 * j:20 + 8 * j, 52 - j:58] = 1
    return lab


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict[str, Path]:
    """A report on twelve photos with findings over two turbines, and one clean photo."""
    from ml.metadata.values import from_folders

    tmp = tmp_path_factory.mktemp("browser")
    names = [f"WTG0{1 + i % 2}/{'ABC'[i % 3]}/LE/p{i:02d}.png" for i in range(N_IMAGES)]
    for i, n in enumerate([*names, "clean.png"]):
        write_photo(tmp / "photos" / n, 64, 48, i)
    proj = Project.create(tmp / "proj", tmp / "photos")
    from_folders(proj)
    settings = json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))
    settings["categories"][0]["action"] = LONG_ACTION
    (proj.root / PROJECT_FILE).write_text(json.dumps(settings), encoding="utf-8")
    for i, key in enumerate(names):
        proj.set_boxes(key, [Box(2, 2, 30, 16, 2)])
        proj.save_teacher_mask(key, _label(i), "grabcut", {})
    proj.save_teacher_mask("clean.png", np.zeros((48, 64), np.uint8), "grabcut", {})
    return write_report(proj, tmp / "rep", source="teacher")


@pytest.fixture(scope="module")
def chromium() -> str:
    if os.name != "posix":
        pytest.skip("the DevTools pipe client needs POSIX pipes")
    found = _browser.find_chromium()
    if found is None:
        why = (f"no Chromium found (apt-get install {' '.join(_browser.browser_packages())}, "
               f"or set B2P_CHROMIUM)")
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"browser tests cannot run under CI: {why}")
        pytest.skip(why)
    return found


@pytest.fixture(scope="module")
def page(report, chromium) -> _browser.PageRun:
    return _browser.open_page(chromium, report["html"], **A4)


class _Resources(HTMLParser):
    """Every URL-valued attribute and every CSS ``url(...)`` / ``@import`` of a page."""

    ATTRS = {"src", "href", "srcset", "poster", "data", "action", "formaction", "background"}

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs) -> None:
        self._in_style = tag == "style"
        for k, v in attrs:
            if k in self.ATTRS and v is not None:
                self.urls.append(v.strip())
            if k == "style" and v:
                self.handle_data(v, css=True)

    def handle_endtag(self, tag) -> None:
        self._in_style = False

    def handle_data(self, data, css: bool = False) -> None:
        if css or self._in_style:
            self.urls += re.findall(r"url\(\s*['\"]?([^'\")]*)", data)
            self.urls += re.findall(r"@import\s+['\"]?([^'\";\s]+)", data)


def test_the_browser_package_list_is_one_ci_installs():
    assert "chromium" in _browser.browser_packages()
    run = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text(encoding="utf-8")
    assert ".ci/browser-packages.txt" in run


def test_the_html_names_no_resource_outside_itself(report):
    parser = _Resources()
    parser.feed(report["html"].read_text(encoding="utf-8"))
    assert parser.urls, "the parser found no image at all"
    outside = [u for u in parser.urls if not (u.startswith("data:") or u.startswith("#"))]
    assert not outside, outside[:5]
    assert any(u.startswith("data:image/png;base64,") for u in parser.urls)  # the chart


def test_chromium_loads_it_offline_without_console_errors(report, page):
    assert page.console == []
    assert page.requests[0] == report["html"].resolve().as_uri()
    leaving = [u for u in page.requests[1:] if not u.startswith("data:")]
    assert leaving == []
    assert sum(u.startswith("data:image/jpeg") for u in page.requests) == N_IMAGES


def _findings(csv_path: Path) -> dict[str, list[dict]]:
    """The findings of each image, in the report's order (findings.csv lists them so)."""
    out: dict[str, list[dict]] = {}
    with open(csv_path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            out.setdefault(row["image"], []).append(row)
    return out


def _row_text(n: int, f: dict) -> str:
    """How finding ``n`` of an image reads in its section's table: #, class, area, ..., box."""
    box = ", ".join(f["bbox"].split())
    return (rf"{n}\s*{re.escape(f['class'])}\s*{int(f['area_px']):,} px\s*[0-9.]+ %\s*"
            rf"{re.escape(box)}\b")


def _priority_row(key: str, n: int, f: dict) -> str:
    """How finding ``n`` of ``key`` reads as a row of the highest-severity table."""
    # values read from folder names are guesses, which the report marks with a *
    where = r"\s*/\s*".join(re.escape(f[k].replace("_", " ")) + r"\*?"
                            for k in ("turbine", "blade", "side") if f[k])
    cells = [re.escape(c) for c in (f["severity_name"], f["action"], f["time_frame"],
                                    f["class"], f"{key} #{n}")]
    return r"\s*".join([*cells, where, re.escape(f"{int(f['area_px']):,} px")])


def _pdf_pages(pdf: bytes) -> list[str]:
    from io import BytesIO

    from pypdf import PdfReader

    return [" ".join(p.extract_text().split()) for p in PdfReader(BytesIO(pdf)).pages]


def test_print_keeps_each_priority_row_on_one_page(report, page):
    pages = _pdf_pages(page.pdf)
    findings = _findings(report["csv"])
    assert sum(map(len, findings.values())) <= 50  # the table lists them all
    for key, rows in findings.items():
        for n, f in enumerate(rows, start=1):
            assert any(re.search(_priority_row(key, n, f), t) for t in pages), (key, n)


def test_print_keeps_every_image_with_its_findings_on_one_page(report, page):
    pages = _pdf_pages(page.pdf)
    findings = _findings(report["csv"])
    assert len(findings) == N_IMAGES and len(pages) >= 3
    for key, rows in findings.items():
        where = [i for i, text in enumerate(pages) if re.search(_row_text(1, rows[0]), text)]
        assert len(where) == 1, (key, where)
        text = pages[where[0]]
        assert key in text  # the section's heading
        for n, f in enumerate(rows, start=1):
            assert re.search(_row_text(n, f), text), (key, n, where[0] + 1)
