"""``b2p train --ddp``: two CPU processes on gloo, set up as torchrun sets them up.

The processes run the CLI itself (``app.cli.main``) with torchrun's environment; each records
what it trained on, its weights after the first step and what it wrote, for the test to compare.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import pytest
import torch

WORLD = 2
TINY = ["--input-size", "56", "--batch-size", "2", "--backbone-weights", "none",
        "--device", "cpu", "--seed", "3"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _record_rank(rank: int, root: Path) -> dict:
    """Patch the trainer and the writers of this process so that they log into the record."""
    import ml.student.checkpoint
    import ml.training.trainer
    from ml.project.store import Project

    rec: dict = {"run": "", "items": {}, "epochs": {}, "cache": {}, "writes": 0}
    step = ml.training.trainer.Trainer._train_step

    def train_step(self, idx, epoch):
        run = rec["run"]
        if self.cache is not None:  # cache positions are per rank: name the views
            rec["cache"][run] = [list(map(str, v.__dict__.values())) for v in self.cache.views]
            items = [":".join(rec["cache"][run][i]) for i in idx]
        else:  # global item numbers from the DistributedSampler
            items = [str(i) for i in idx]
        rec["items"].setdefault(run, []).extend(items)
        rec["epochs"].setdefault(run, []).append(epoch)
        if len(rec["epochs"][run]) > 1:
            return step(self, idx, epoch)
        # the first step only: what it can change, trainable parameters and buffers (frozen
        # tensors would add 1 GB of dumps to the run's temporary folder)
        keep = ({n for n, p in self.model.named_parameters() if p.requires_grad}
                | {n for n, _ in self.model.named_buffers()})

        def kept(state):
            return {k: v.clone() for k, v in state.items() if k in keep}

        before = kept(self.model.state_dict())
        out = step(self, idx, epoch)
        torch.save({"before": before, "model": kept(self.model.state_dict()),
                    "ema": kept(self.ema.module.state_dict())}, root / f"{run}_rank{rank}.pt")
        return out

    def counting(fn):
        def wrapped(*a, **kw):
            rec["writes"] += 1
            return fn(*a, **kw)
        return wrapped

    ml.training.trainer.Trainer._train_step = train_step
    ml.student.checkpoint.save_checkpoint = counting(ml.student.checkpoint.save_checkpoint)
    ml.student.checkpoint.save_card = counting(ml.student.checkpoint.save_card)
    Project.set_split = counting(Project.set_split)
    return rec


def _rank_main(rank: int, root: str, runs: list[tuple[str, int, list[str]]]) -> None:
    """One rank (spawned): torchrun's environment, then each run through the CLI."""
    torch.set_num_threads(1)
    from app.cli import main

    rec = _record_rank(rank, Path(root))
    for name, port, argv in runs:
        os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank),
                          MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        rec["run"] = name
        rec[f"rc_{name}"] = main(argv)
    Path(root, f"rank{rank}.json").write_text(json.dumps(rec))


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory):
    """frozen (sharded feature cache), its resume, and bitfit (DistributedSampler)."""
    from tests.test_train import make_project

    root = tmp_path_factory.mktemp("ddp")
    proj = make_project(root, 7)  # 6 train + 1 val: the training items split evenly
    base = ["train", str(proj.root), *TINY, "--ddp"]
    runs = [("frozen", _free_port(), [*base, "--out", str(root / "a"), "--mode", "frozen",
                                      "--epochs", "1"]),
            ("resume", _free_port(), [*base, "--out", str(root / "a"), "--epochs", "2",
                                      "--resume"]),
            ("bitfit", _free_port(), [*base, "--out", str(root / "b"), "--mode", "bitfit",
                                      "--epochs", "1"])]
    torch.multiprocessing.spawn(_rank_main, args=(str(root), runs), nprocs=WORLD, join=True)
    recs = [json.loads((root / f"rank{r}.json").read_text()) for r in range(WORLD)]
    yield root, recs
    shutil.rmtree(root, ignore_errors=True)  # 2 GB of model folders and state dumps


def test_every_run_succeeds_on_every_rank(ddp_runs):
    _, recs = ddp_runs
    for rec in recs:
        assert (rec["rc_frozen"], rec["rc_resume"], rec["rc_bitfit"]) == (0, 0, 0)


@pytest.mark.parametrize("run", ["frozen", "bitfit"])
def test_ranks_train_on_different_samples(ddp_runs, run):
    _, (r0, r1) = ddp_runs
    a, b = r0["items"][run], r1["items"][run]
    assert a and len(a) == len(b)  # as many steps on each rank
    assert not set(a) & set(b)  # 12 cached views / 6 items: a share each, none shared


def test_each_rank_caches_only_its_share_of_the_features(ddp_runs):
    _, (r0, r1) = ddp_runs
    c0, c1 = ({":".join(v) for v in r["cache"]["frozen"]} for r in (r0, r1))
    assert len(c0) + len(c1) == 13 and not c0 & c1  # 6 images x 2 flips, and 1 val view


@pytest.mark.parametrize("run", ["frozen", "resume", "bitfit"])
def test_weights_and_ema_agree_across_ranks_after_a_step(ddp_runs, run):
    root, _ = ddp_runs
    s0, s1 = (torch.load(root / f"{run}_rank{r}.pt") for r in range(WORLD))
    for part in ("model", "ema"):
        for k, v in s0[part].items():
            assert torch.equal(v, s1[part][k]), f"{part} {k}"
    moved = [k for k, v in s0["model"].items() if not torch.equal(v, s0["before"][k])]
    # batch-norm statistics of different batches, averaged: the same on both ranks
    assert any(k.endswith("running_mean") for k in moved)
    if run != "resume":  # (a resumed run's first step has the saved run's last rate: 0 here)
        assert any(k.startswith("decoder.") and k.endswith("weight") for k in moved)
    if run == "bitfit":  # the backbone's biases train too, and stay in step across ranks
        assert any(k.startswith("backbone.") and k.endswith("bias") for k in moved)


def test_only_rank_0_writes(ddp_runs):
    root, (r0, r1) = ddp_runs
    assert r0["writes"] > 0 and r1["writes"] == 0
    assert (root / "a" / "model.safetensors").is_file()
    assert (root / "b" / "last" / "train_state.pt").is_file()


def test_resume_under_ddp_continues_the_saved_epoch(ddp_runs):
    from ml.student.config import ModelCard

    root, recs = ddp_runs
    for rec in recs:
        assert set(rec["epochs"]["resume"]) == {1}  # the second epoch only, on both ranks
    card = ModelCard.load(root / "a" / "config.json")
    assert [h["epoch"] for h in card.history] == [1, 2]
    assert card.student.mode == "frozen" and card.train.world_size == WORLD


def test_ddp_without_torchrun_says_how_to_launch(tmp_path, monkeypatch, capsys):
    from app.cli import main

    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    rc = main(["train", str(tmp_path / "proj"), "--out", str(tmp_path / "m"), "--ddp"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "torchrun --nproc-per-node N -m app.cli train PROJECT" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("n,world", [(6, 2), (7, 3), (2, 8)])
def test_padded_shares_cover_everything_with_as_many_items_per_rank(n, world):
    from ml.training.distributed import Dist

    shares = [Dist(r, world, r, torch.device("cpu"), True).share(n, pad=True)
              for r in range(world)]
    assert len({len(s) for s in shares}) == 1  # as many steps on every rank
    assert sorted({i for s in shares for i in s}) == list(range(n))
    if n % world == 0:
        assert sorted(i for s in shares for i in s) == list(range(n))  # no repeats needed
    assert Dist().share(n, pad=True) == list(range(n))  # one process: all, in order
