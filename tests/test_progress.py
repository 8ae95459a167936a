"""Progress reporting: the ETA of a run that starts part-way (a resumed training)."""

from __future__ import annotations

import pytest

from ml.common.progress import Progress, Reporter


class FakeClock:
    """A clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_eta_comes_from_the_rate_of_this_session():
    clock, seen = FakeClock(), []
    rep = Reporter(100, seen.append, done=60, clock=clock)
    clock.now += 10.0
    rep.step(1)
    clock.now += 10.0
    rep.step(1)
    assert [p.done for p in seen] == [61, 62]
    # 2 steps in 20 s: 10 s a step, 38 to go. Counting the 60 earlier steps would say 6.1 s.
    assert seen[-1].eta_s == pytest.approx(380.0)


def test_eta_from_the_start_and_when_nothing_ran_yet():
    clock, seen = FakeClock(), []
    rep = Reporter(4, seen.append, clock=clock)
    rep.step(0, "setting up")
    clock.now += 3.0
    rep.step(1)
    clock.now += 3.0
    rep.step(3)
    assert seen[0] == Progress(0, 4, "setting up", {}, None)
    assert seen[1].eta_s == pytest.approx(9.0)
    assert seen[2].eta_s == pytest.approx(0.0)


def test_a_bar_writes_a_few_lines_to_a_log_not_one_per_event(capsys):
    from app.cli._progress import tqdm_progress


    with tqdm_progress("import") as cb:  # stderr is captured: not a terminal
        for i in range(1, 5001):
            cb(Progress(i, 5000, message=f"p{i}.png"))
    err = capsys.readouterr().err
    drawn = err.count("import:")
    assert 1 <= drawn <= 3, drawn  # the first line, the last, nothing for 5,000 events between
    assert "5000/5000" in err
