"""The worker side of a campaign (:mod:`ml.campaign.client`): predict one photo, write its files.

Runs inside a Dask worker. It never opens the project: the client hands each task the photo's
path (or fsspec URL), its teacher mask's path and its boxes, and the task writes the result
under the run folder, each file atomically and the JSON last, so a photo whose JSON exists is
complete. The JSON also holds the photo's proposals, found by
:func:`ml.prediction.proposals.find_proposals` as ``b2p predict`` finds them, for the client to
store. Each worker loads the model once (a per-process cache keyed by :class:`RunSpec`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ml.common.atomic import atomic_write_json
from ml.common.images import ImageError, load_image, load_label, save_label
from ml.project.files import EXTRA_SUFFIXES, mask_rel

RESULTS = "results"  # run folder: results/KEY.json; the maps mirror the project (masks/student)
MAX_REGIONS = 500  # regions listed in a photo's JSON (the count is always exact)


@dataclass(frozen=True)
class RunSpec:
    """What every task of a run shares; its predictor fields key the per-worker model cache."""

    model_dir: str
    device: str = "auto"
    tiled: bool = False
    options: tuple[tuple[str, Any], ...] = ()  # Predictor options (overlap, batch_size, box_pad)
    torch_threads: int = 0  # > 0: the worker sets torch's threads (a local cluster splits cores)
    fallback: bool = True
    palette: tuple[tuple[int, int, int], ...] = ()
    calibration: str = ""  # the proposals' calibration as JSON text; "" finds no proposals
    proposal_teacher: str | None = None  # the teacher that scores a proposal's disagreement

    def predictor_key(self) -> tuple:
        return self.model_dir, self.device, self.tiled, self.options, self.torch_threads


@dataclass(frozen=True)
class PhotoTask:
    """One photo to predict: where to read it and what the project knows about it."""

    key: str
    photo: str  # a path the worker can read, or an fsspec URL (s3://..., file://...)
    teacher: str | None = None  # the teacher mask's path, for the fallback and corrections
    boxes: np.ndarray | None = None  # (N, 4) xyxy; None: no box constraint
    classes: np.ndarray | None = None  # (N,) the boxes' class ids
    all_boxes: np.ndarray | None = None  # (N, 4) every box, for proposals (None: none asked)
    every_boxed: bool = False  # a person said every defect of the photo is boxed


@dataclass(frozen=True)
class PhotoResult:
    """What a task reports back (and its JSON holds): the figures, or why it failed."""

    key: str
    error: str = ""
    shape: tuple[int, int] = (0, 0)
    extras: tuple[str, ...] = ()  # maps written beside the mask: confidence, corrections
    fallbacks: int = 0
    settings: dict[str, Any] = field(default_factory=dict)  # Predictor.settings()
    seconds: float = 0.0
    proposals: dict[str, Any] | None = None  # ml.prediction.proposals.find_proposals' entry

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PhotoResult:
        return cls(key=str(d["key"]), shape=(int(d["shape"][0]), int(d["shape"][1])),
                   extras=tuple(d.get("extras", ())), fallbacks=int(d.get("fallbacks", 0)),
                   settings=dict(d.get("settings", {})), seconds=float(d.get("seconds", 0.0)),
                   proposals=d.get("proposals"))


def result_json(run_dir: str | os.PathLike, key: str) -> Path:
    """Where a photo's JSON lives in a run folder (written last: it marks the photo complete)."""
    mask_rel("student", key)  # the same check of the key as the maps get
    return Path(run_dir) / RESULTS / f"{key}.json"


def result_files(run_dir: str | os.PathLike, res: PhotoResult) -> list[Path]:
    """The maps a finished photo left in the run folder."""
    return [Path(run_dir) / mask_rel("student", res.key, EXTRA_SUFFIXES.get(w, ""))
            for w in ("", *res.extras)]


_CACHE: dict[tuple, Any] = {}
_CACHE_LOCK = threading.Lock()


def _pin_gpu() -> None:
    """Several GPUs seen by one machine's workers: worker i takes GPU i (mod the count)."""
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n < 2:
        return
    try:
        from distributed import get_worker

        index = int(str(get_worker().name).rsplit("-", 1)[-1])
    except (ImportError, ValueError):  # not in a worker, or a cluster naming its own workers
        return
    torch.cuda.set_device(index % n)  # per thread: a task thread sets it every time


def predictor_for(spec: RunSpec) -> Any:
    """This worker's predictor for ``spec``: loaded once, then reused by every task."""
    _pin_gpu()
    key = spec.predictor_key()
    with _CACHE_LOCK:  # threads of one worker wait for one load instead of loading twice
        if key not in _CACHE:
            from ml.prediction.predict import Predictor

            _CACHE.clear()  # one model per worker: a later run with another model frees it
            if spec.torch_threads > 0:
                import torch

                torch.set_num_threads(spec.torch_threads)
            _CACHE[key] = Predictor.from_dir(spec.model_dir, spec.device, tiled=spec.tiled,
                                             **dict(spec.options))
        return _CACHE[key]


def read_photo(where: str) -> np.ndarray:
    """A photo by path, or by fsspec URL (copied to a temporary file, then read the same way)."""
    if "://" not in where:
        return load_image(where)
    import fsspec

    suffix = PurePosixPath(where).suffix
    with tempfile.TemporaryDirectory(prefix="b2p-photo-") as tmp:
        local = Path(tmp) / f"photo{suffix}"
        try:
            with fsspec.open(where, "rb") as src, open(local, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except FileNotFoundError as e:
            raise ImageError(where, "file not found") from e
        return load_image(local)


def _regions(label: np.ndarray, confidence: np.ndarray) -> dict[str, Any]:
    from ml.project.regions import find_regions

    found = find_regions(label, confidence)
    listed = [{"id": r.id, "cls": r.cls, "area": r.area, "bbox": list(r.bbox),
               "confidence": None if r.confidence is None else round(r.confidence, 4)}
              for r in list(found)[:MAX_REGIONS]]
    return {"count": len(found), "listed": listed}


def _proposals(spec: RunSpec, task: PhotoTask, predictor: Any, result: Any,
               image: np.ndarray, proposed: np.ndarray | None) -> dict[str, Any] | None:
    """The photo's proposals, found as ``b2p predict`` finds them (the client stores them);
    those found under the mask's threshold are drawn into ``proposed``."""
    if not spec.calibration or task.all_boxes is None:
        return None
    import json

    from ml.evaluation.calibration import Calibration
    from ml.prediction.proposals import find_proposals

    teacher = None
    if spec.proposal_teacher:  # one per task: a teacher holds the photo it was given
        from ml.teachers import make_teacher

        teacher = make_teacher(spec.proposal_teacher)
    return find_proposals(result.label, result.confidence, task.all_boxes, task.every_boxed,
                          "", Calibration.from_json(json.loads(spec.calibration)), predictor,
                          teacher, image, result.regions, result.defect, proposed,
                          result.novelty)


def predict_photo(spec: RunSpec, task: PhotoTask, run_dir: str) -> PhotoResult:
    """Worker task: predict one photo, write its maps and then its JSON under ``run_dir``.

    A photo that cannot be predicted comes back as a result naming the reason (nothing is
    written), so one bad photo never fails the task and Dask never retries it in vain.
    """
    from ml.prediction.batch_predict import _why
    from ml.prediction.batch_predict import predict_photo as predict_arrays
    from ml.prediction.proposals import drawn, proposed_map

    t0 = time.perf_counter()
    try:
        predictor = predictor_for(spec)
        image = read_photo(task.photo)
        teacher = load_label(task.teacher) if task.teacher else None
        result, corr = predict_arrays(predictor, image, teacher, task.boxes, task.classes,
                                      spec.fallback)
        proposed = proposed_map(result)
        found = _proposals(spec, task, predictor, result, image, proposed)
        del image
        pal = [tuple(c) for c in spec.palette] or None
        maps = {"confidence": result.confidence}
        if corr is not None:
            maps["corrections"] = corr
        if drawn(proposed) is not None:
            maps["proposed"] = proposed
        res = PhotoResult(task.key, shape=(int(result.label.shape[0]),
                                           int(result.label.shape[1])),
                          extras=tuple(maps), fallbacks=int(result.fallbacks),
                          settings=predictor.settings(), proposals=found)
        files = result_files(run_dir, res)
        for path, arr in zip(files[1:], maps.values(), strict=True):
            save_label(path, arr)
        save_label(files[0], result.label, pal)
        res = PhotoResult(**{**asdict(res), "seconds": round(time.perf_counter() - t0, 3)})
        info = {**asdict(res), "photo": task.photo,
                "mean_confidence": round(float(result.confidence.mean()) / 255.0, 4),
                "regions": _regions(result.label, result.confidence)}
        atomic_write_json(result_json(run_dir, task.key), info)  # last: the photo is complete
        return res
    except Exception as e:  # one bad photo must not end the batch
        return PhotoResult(task.key, error=_why(e), seconds=round(time.perf_counter() - t0, 3))
