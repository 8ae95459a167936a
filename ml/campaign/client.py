"""Batch prediction of a whole campaign on a Dask cluster (``b2p predict PROJECT --scheduler``).

What runs where: this module is the *client*. It reads the project, submits one task per photo
(:func:`ml.campaign.worker.predict_photo`) in a bounded window, and as results come back
(``as_completed``) moves each photo's finished maps from the run folder into the project and
records each in one transaction of the project database (``index_every`` is kept for
callers; every result is stored as it comes). Workers load the model once each, read photos
by path (or fsspec URL) and write::

    PROJECT/runs/<run>/masks/student/KEY.png (+ _conf, _corr)   moved into the project after
    PROJECT/runs/<run>/results/KEY.json                         written last: photo complete

Each photo's proposals (the defects found outside a person's boxes) are found on the worker
beside its prediction, with the model's calibration (fitted here first when the card has
none) and a teacher for the review queue's disagreement figure, exactly as ``b2p predict``
finds them; the client stores them with the photo's masks, in the same transaction.

The run's name comes from the model and the settings, so the same command started again after
a kill finds its folder: photos with a complete JSON are not predicted again. A run that ends
with every photo done removes its folder; one with failures or a stop keeps it for the next.

``scheduler="local"`` starts a ``LocalCluster`` sized to this machine for the run and stops it
after; an address (``tcp://HOST:8786``) uses a running cluster, whose workers must see the
project folder (they write the run folder there) and the model folder at the same paths; the
photos may come from elsewhere through ``photo_root`` (an fsspec URL).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

from ml.campaign.worker import (
    PhotoResult,
    PhotoTask,
    RunSpec,
    predict_photo,
    result_files,
    result_json,
)
from ml.common.progress import ProgressFn, Reporter, StopFn
from ml.prediction.batch_predict import Predictions, _check_classes
from ml.prediction.proposals import store_proposals
from ml.project.store import Project, boxes_to_arrays

RUNS_DIR = "runs"
INSTALL_HINT = "pip install 'boxes2pixels[scale]' (or: pip install distributed bokeh)"
WORKER_MEMORY = 4 << 30  # bytes a local worker is given room for: a 45 MP photo's maps + model
KILLED = ("its worker died while predicting it (out of memory or killed), on every try; "
          "the other photos went on")


class CampaignError(RuntimeError):
    """A campaign that cannot start: no Dask installed, or no scheduler at the address."""


@dataclass(frozen=True, kw_only=True)
class CampaignResult(Predictions):
    """A prediction batch run on Dask: :class:`ml.prediction.batch_predict.Predictions` and how it
    went."""

    resumed: int = 0  # photos finished by an earlier run of the same command, not predicted again
    run_dir: str = ""  # kept when photos failed or the run stopped (the next run resumes there)
    workers: int = 0
    dashboard: str = ""


def _require_distributed() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError as e:
        raise CampaignError(f"running on a Dask cluster needs the 'distributed' package: "
                            f"{INSTALL_HINT}") from e


@dataclass(frozen=True)
class LocalSize:
    """How a cluster on this machine is laid out."""

    workers: int
    tasks: int  # photos one worker predicts at once (its Dask threads)
    torch_threads: int  # torch's threads in each worker


def local_size(workers: int | None = None) -> LocalSize:
    """One worker per GPU, two photos at a time (one reads or writes while the other is on
    the GPU); without a GPU one worker per core, one photo and one torch thread each (on a
    busy machine torch's threads wait on each other: bench/scale.py), fewer where memory is
    short. ``workers`` overrides the count; the cores are shared out between them.
    """
    import psutil
    import torch

    cores = os.cpu_count() or 1
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if workers is None:
        by_memory = max(1, int(psutil.virtual_memory().total // WORKER_MEMORY))
        workers = gpus or max(1, min(cores, by_memory))
    if workers < 1:
        raise CampaignError(f"--workers must be at least 1, got {workers}")
    tasks = 2 if gpus else 1
    return LocalSize(workers, tasks, max(1, cores // (workers * tasks)))


def _probe(address: str, timeout: float) -> None:
    """Connect and handshake within ``timeout`` s, or raise: Client alone can hang on a peer
    that accepts the connection and never answers."""
    from distributed.comm import connect

    async def go() -> None:
        comm = await asyncio.wait_for(connect(address, timeout=timeout), timeout)
        await comm.close()

    failure: list[BaseException] = []

    def run() -> None:  # a thread of its own: the caller may already run an event loop
        try:
            asyncio.run(go())
        except BaseException as e:  # noqa: BLE001 - handed to the caller below
            failure.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout + 2)
    if failure and not isinstance(failure[0], (OSError, asyncio.TimeoutError)):
        raise CampaignError(f"something answered at {address}, but not as a Dask scheduler "
                            f"({type(failure[0]).__name__}); check the address and port")
    if t.is_alive() or failure:
        why = f" ({failure[0]})" if failure and str(failure[0]) else ""
        raise CampaignError(f"no Dask scheduler answered at {address} within {timeout:g} s"
                            f"{why}; start one (`dask scheduler`) or check the address")


@contextlib.contextmanager
def _client(scheduler: str, workers: int | None, timeout: float, processes: bool,
            torch_threads: int | None) -> Iterator[tuple[Any, int, int]]:
    """(client, workers, torch threads per worker); a local cluster lives as long as the block."""
    from distributed import Client, LocalCluster

    if scheduler != "local":
        if workers is not None:
            raise CampaignError("--workers sizes a local cluster; a running one has its own")
        _probe(scheduler, timeout)
        with Client(scheduler, timeout=timeout) as client:
            yield client, len(client.scheduler_info(n_workers=-1)["workers"]), \
                torch_threads or 0
        return
    size = local_size(workers)
    with _workers_ignore_ctrl_c():
        cluster = LocalCluster(n_workers=size.workers, threads_per_worker=size.tasks,
                               processes=processes, silence_logs=logging.ERROR)
    # Threads-only clusters share this process's torch: leave its thread count alone.
    with cluster, Client(cluster) as client:
        yield client, size.workers, (torch_threads or size.torch_threads) if processes else 0


@contextlib.contextmanager
def _workers_ignore_ctrl_c() -> Iterator[None]:
    """Start worker processes with Ctrl-C ignored (kept across exec): a terminal sends it to
    the whole process group, and the client alone decides to stop after the photos in flight."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _dashboard(client: Any) -> str:
    if "dashboard" not in client.scheduler_info().get("services", {}):
        return "none (the scheduler needs the bokeh package to serve one)"
    return str(client.dashboard_link)


def run_name(model: str, settings: dict[str, Any]) -> str:
    """The run folder's name: the same model and settings find the same folder again."""
    digest = sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()
    return f"predict-{model}-{digest[:10]}"


def _record_settings(res: PhotoResult, extra: dict[str, Any]) -> dict[str, Any]:
    return {**res.settings, **extra}  # what predict_project stores with each mask


def _load_result(run_dir: Path, key: str) -> PhotoResult | None:
    try:
        return PhotoResult.from_json(json.loads(result_json(run_dir, key).read_text("utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _sort_out(project: Project, run_dir: Path, keys: Iterable[str], model: str,
              extra: dict[str, Any]) -> tuple[list[PhotoResult], list[str], list[str]]:
    """(finished here but not yet in the project, already in the project, still to predict)."""
    ready: list[PhotoResult] = []
    adopted: list[str] = []
    todo: list[str] = []
    for key in keys:
        res = _load_result(run_dir, key) if run_dir.is_dir() else None
        if res is None:
            todo.append(key)
        elif all(p.is_file() for p in result_files(run_dir, res)):
            ready.append(res)
        else:  # moved already: done if the index names it (else killed between move and save)
            m = project.record(key).student
            same = m is not None and m.source == model and \
                m.settings == _record_settings(res, extra)
            (adopted if same else todo).append(key)
    return ready, adopted, todo


def _task(project: Project, key: str, box_constraint: bool, photo_root: str | None,
          proposals: bool) -> PhotoTask:
    rec = project.record(key)
    photo = f"{photo_root.rstrip('/')}/{key}" if photo_root else str(project.image_path(key))
    teacher = str(project.root / rec.teacher.path) if rec.teacher else None
    boxes, classes = (boxes_to_arrays(rec.prediction_boxes()) if box_constraint
                      else (None, None))
    every = boxes_to_arrays(rec.boxes)[0] if proposals else None
    return PhotoTask(key, photo, teacher, boxes, classes, every, rec.every_defect_boxed())


def _outcome(fut: Any, key: str) -> PhotoResult:
    """A finished future's result, or a result naming why its task failed."""
    from distributed import KilledWorker

    try:
        if fut.status == "finished":
            return fut.result()
        exc = fut.exception()
    except BaseException as e:  # noqa: BLE001 - cancelled, lost with its scheduler
        exc = e
    why = KILLED if isinstance(exc, KilledWorker) else f"{type(exc).__name__}: {exc}"
    return PhotoResult(key, error=why)


def _run_tasks(client: Any, tasks: Iterator[PhotoTask | PhotoResult], spec: RunSpec,
               run_dir: Path, window: int, take: Callable[[PhotoResult], None],
               stop: Callable[[], bool]) -> bool:
    """Keep ``window`` tasks in flight; hand each result to ``take``; True when stopped."""
    from distributed import as_completed

    owner: dict[Any, str] = {}
    flow = as_completed()

    def top_up() -> None:
        while len(owner) < window:
            task = next(tasks, None)
            if task is None:
                return
            if isinstance(task, PhotoResult):  # the client could not even describe it
                take(task)
                continue
            fut = client.submit(predict_photo, spec, task, str(run_dir), pure=False)
            owner[fut] = task.key
            flow.add(fut)

    top_up()
    for fut in flow:
        take(_outcome(fut, owner.pop(fut)))
        fut.release()
        if stop():
            client.cancel(list(owner))
            return True
        top_up()
    return False


def _calibration(project: Project, model_dir: str | Path, device: str, tiled: bool,
                 options: dict[str, Any]) -> str:
    """The proposals' calibration as JSON for the workers (fitted here first, by a predictor
    set as the workers', when the card has none: as ``b2p predict`` does)."""
    from ml.prediction.proposal_calibration import ensure_calibration

    cal = ensure_calibration(project, model_dir, device=device, tiled=tiled, **options)
    return json.dumps(cal.to_json())


def predict_campaign(project: Project, model_dir: str | Path, scheduler: str = "local",
                     workers: int | None = None, keys: list[str] | None = None,
                     tiled: bool = False, box_constraint: bool = True, fallback: bool = True,
                     device: str = "auto", progress: ProgressFn | None = None,
                     should_stop: StopFn | None = None,
                     note: Callable[[str], None] | None = None, photo_root: str | None = None,
                     window: int = 0, index_every: int = 50, connect_timeout: float = 10.0,
                     processes: bool = True, torch_threads: int | None = None,
                     proposals: bool = True, proposal_teacher: str | None = "grabcut",
                     **options: Any) -> CampaignResult:
    """Predict a project's photos on Dask and store the student masks, as ``predict_project``.

    ``note`` gets one-line news (the dashboard link and the cluster's size); ``window`` tasks
    stay in flight (default 4 per worker); ``processes=False`` runs a local cluster's workers
    as threads of this process (tests). ``torch_threads``: each worker's torch threads
    (default: a local cluster splits the cores, a running one keeps its workers' setting).
    ``proposals``, ``proposal_teacher``: as :func:`~ml.prediction.batch_predict.predict_project`
    (the workers find each photo's proposals, the client stores them with its masks).
    ``options`` go to the Predictor (overlap, batch_size, box_pad).
    """
    _require_distributed()
    from ml.student.checkpoint import load_card, model_id

    t0 = time.monotonic()
    warnings = _check_classes(load_card(model_dir), project.num_classes, project.class_names())
    mid = model_id(model_dir)
    keys = project.keys() if keys is None else list(keys)
    extra = {"box_constraint": box_constraint, "fallback": fallback, "model_dir": str(model_dir)}
    opts = tuple(sorted(options.items()))
    run_dir = project.root / RUNS_DIR / run_name(mid, {**extra, "tiled": tiled, "options": opts,
                                                      "photo_root": photo_root,
                                                      "proposals": proposals})
    ready, adopted, todo = _sort_out(project, run_dir, keys, mid, extra)
    done: list[str] = list(adopted)
    failed: dict[str, str] = {}
    fallbacks = 0
    rep = Reporter(len(keys), progress, should_stop, done=len(adopted))
    say = note or (lambda _: None)
    cluster = {"workers": 0, "dashboard": ""}

    def take(res: PhotoResult) -> None:
        nonlocal fallbacks
        try:
            if res.error:
                raise RuntimeError(res.error)
            with project.batch():  # one photo in one transaction, as predict_project does
                project.keep_previous(res.key, new_model=mid)
                project.adopt_student(res.key, run_dir, res.shape, mid, res.extras,
                                      _record_settings(res, extra))
                if res.proposals is not None:
                    store_proposals(project, res.key, {**res.proposals, "model": mid})
            done.append(res.key)
            fallbacks += res.fallbacks
        except Exception as e:  # one bad photo must not end the batch
            failed[res.key] = str(e) if res.error else f"{type(e).__name__}: {e}"
        rep.step(message=res.key)

    def describe(key: str) -> PhotoTask | PhotoResult:
        try:
            return _task(project, key, box_constraint, photo_root, proposals)
        except Exception as e:  # a record the client cannot describe: name it, go on
            return PhotoResult(key, error=f"{type(e).__name__}: {e}")

    for res in ready:  # finished by an earlier run: into the project without predicting
        take(res)
    stopped = False
    if todo and not rep.stopped():
        cal = _calibration(project, model_dir, device, tiled, options) if proposals else ""
        with _client(scheduler, workers, connect_timeout, processes,
                     torch_threads) as (client, n, thr):
            cluster.update(workers=n, dashboard=client.dashboard_link or "")
            say(f"Dask dashboard: {_dashboard(client)} ({n} workers)")
            spec = RunSpec(str(Path(model_dir).resolve()), device, tiled, opts, thr,
                           fallback, tuple(tuple(c) for c in project.palette()), cal,
                           proposal_teacher)
            stopped = _run_tasks(client, (describe(k) for k in todo), spec, run_dir,
                                 window or 4 * max(n, 1), take, rep.stopped)
    stopped = stopped or (len(done) + len(failed) < len(keys))
    if not failed and not stopped:
        shutil.rmtree(run_dir, ignore_errors=True)
        with contextlib.suppress(OSError):  # the runs folder too, when no other run is kept
            run_dir.parent.rmdir()
    return CampaignResult(action="predicted", total=len(keys), done=tuple(done), failed=failed,
                          stopped=stopped, warnings=tuple(warnings), model=mid,
                          fallback_boxes=fallbacks, seconds=round(time.monotonic() - t0, 2),
                          resumed=len(ready) + len(adopted),
                          run_dir=str(run_dir) if run_dir.is_dir() else "", **cluster)
