"""Model folders: how a trained student is saved, loaded and found.

    MODEL_DIR/model.safetensors   what training changed (below); its header names the backbone
                                  weights file that holds the rest
    MODEL_DIR/config.json         the :class:`ml.student.config.ModelCard` (how to rebuild
                                  the model)
    MODEL_DIR/train_state.pt      optional: optimizer / EMA / epoch, for resuming training
    MODEL_DIR/novelty.safetensors optional: the background bank (:mod:`ml.student.novelty`)
    RUN_DIR/last/                 a training run's latest state (all three files), for resuming

:class:`ModelFolder` opens one folder once (its card, weights and resume state, each read at
most once), as segment-anything's predictor holds its state. A project keeps its model folders
under ``PROJECT/models``; :func:`list_models`,
:func:`current_model`, :func:`resumable_run` and :func:`find_model` are the only rules for
finding them. The model id is the start of the weights file's SHA-256, so every stored mask
names exactly the weights that made it.

What a checkpoint holds. A BitFit or frozen student trains ~5.5 M of its ~20 M parameters; the
other backbone parameters keep the values of the pretrained weights file. Saving them would copy
that file into every model folder (80 MB, and twice more in the resume state), so a checkpoint
keeps only what can differ from the file -- decoder, heads, detail branch, the backbone's
trainable biases and norms, every buffer, the resampled position embeddings -- and names the
file by its source and SHA-256 in the safetensors header. Loading reads that file from the
weights cache (refusing one with another hash), then the checkpoint's tensors over it.
A backbone with no weights file (random init: tests and benches) or one that trains in full
has nothing to leave out: its checkpoint holds the full state, exactly the format written before
this one, and every such folder loads as it always did. (Recording a random init's seed instead
would tie old checkpoints to the initialisation order of timm and torch.) The resume state
scales the same way: raw and EMA weights as above; the optimizer only ever held the trainable
parameters.
"""

from __future__ import annotations

import datetime as _dt
import io
from collections.abc import Mapping
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.common.atomic import atomic_write_bytes, remove_stale_temps
from ml.common.hashing import sha256_file
from ml.common.torch_load import load_torch_checkpoint
from ml.student.config import ModelCard

# torch, safetensors and the models load inside the functions that need them: the GUI and the
# CLI import this module at start for its folder rules.
if TYPE_CHECKING:
    import torch
    from torch import nn

    from ml.project.store import Project
    from ml.student.models import Backbone

WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "config.json"
TRAIN_STATE_NAME = "train_state.pt"
NOVELTY_NAME = "novelty.safetensors"  # the background bank, written by ml.student.novelty
LAST_NAME = "last"  # a run's latest state, beside its best weights
_BACKBONE_SOURCE = "b2p.backbone_weights"  # safetensors header: the file holding the rest
_BACKBONE_SHA256 = "b2p.backbone_sha256"


# -- what is saved ---------------------------------------------------------------------------

def _backbone(model: nn.Module) -> tuple[str, Backbone] | None:
    """(state-dict prefix, module) of the model's pretrained backbone, if it has one."""
    from ml.student.models import Backbone

    for name, module in model.named_modules():
        if isinstance(module, Backbone):
            return (f"{name}." if name else ""), module
    return None


def pretrained_keys(model: nn.Module) -> set[str]:
    """State keys a checkpoint leaves out: frozen backbone tensors still equal to its file."""
    found = _backbone(model)
    if found is None:
        return set()
    prefix, backbone = found
    return {prefix + k for k in backbone.pretrained_keys()}


def saved_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors a checkpoint keeps: the state dict less :func:`pretrained_keys`."""
    skip = pretrained_keys(model)
    return {k: v for k, v in model.state_dict().items() if k not in skip}


def load_state(model: nn.Module, state: Mapping[str, torch.Tensor], where: str | Path) -> None:
    """Load a :func:`saved_state` into ``model``, whose backbone file is already read."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    found = _backbone(model)
    from_file: set[str] = set()
    if found is not None:
        prefix, backbone = found
        backbone.overwritten(k.removeprefix(prefix) for k in state if k.startswith(prefix))
        from_file = {prefix + k for k in backbone.file_keys()}
    missing = [k for k in missing if k not in from_file]
    if missing or unexpected:
        raise ValueError(f"{where}: weights do not match config.json (missing: {missing[:4]}, "
                         f"unexpected: {unexpected[:4]})")


def _plain_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses views and tensors sharing storage: give it contiguous copies.
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()}


def _weights_header(model: nn.Module) -> dict[str, str]:
    meta = {"format": "pt"}
    found = _backbone(model)
    if found is not None and found[1].weights is not None and found[1].pretrained_keys():
        meta |= {_BACKBONE_SOURCE: found[1].weights.source,
                 _BACKBONE_SHA256: found[1].weights.sha256}
    return meta


def save_checkpoint(model_dir: str | Path, model: nn.Module, card: ModelCard,
                    optimizer_state: dict | None = None,
                    extra_state: dict[str, Any] | None = None) -> Path:
    """Write weights, card and (when given) training state into ``model_dir``; return it."""
    import torch
    from safetensors.torch import save

    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    for name in (WEIGHTS_NAME, CARD_NAME, TRAIN_STATE_NAME):  # left by a killed earlier save
        remove_stale_temps(model_dir, name)
    atomic_write_bytes(model_dir / WEIGHTS_NAME, save(_plain_tensors(saved_state(model)),
                                                      metadata=_weights_header(model)))
    save_card(model_dir, card)
    if optimizer_state is not None or extra_state is not None:
        buf = io.BytesIO()
        torch.save({"optimizer": optimizer_state, **(extra_state or {})}, buf)
        atomic_write_bytes(model_dir / TRAIN_STATE_NAME, buf.getvalue())
    return model_dir


def save_card(model_dir: str | Path, card: ModelCard) -> None:
    """Write (or rewrite) the model card of ``model_dir``."""
    card.save(Path(model_dir) / CARD_NAME)


# -- loading ---------------------------------------------------------------------------------

def is_model(model_dir: str | Path) -> bool:
    """True when ``model_dir`` holds weights and a card."""
    return all((Path(model_dir) / name).is_file() for name in (WEIGHTS_NAME, CARD_NAME))


def load_card(model_dir: str | Path) -> ModelCard:
    """The model card of a trained model folder (FileNotFoundError if it is not one)."""
    model_dir = Path(model_dir)
    for name in (WEIGHTS_NAME, CARD_NAME):
        if not (model_dir / name).is_file():
            raise FileNotFoundError(f"{model_dir}: not a trained model (missing {name})")
    return ModelCard.load(model_dir / CARD_NAME)


def load_weights(model: nn.Module, model_dir: str | Path,
                 state: Mapping[str, torch.Tensor] | None = None) -> None:
    """Load a model folder's weights into ``model``, built from its card without weights.

    When the checkpoint names a backbone weights file, that file is read first (from the
    weights cache, hash-checked). ``state``, a :func:`saved_state` of the same run (the resume
    state's raw weights), replaces the folder's own tensors.
    """
    from safetensors import safe_open

    path = Path(model_dir) / WEIGHTS_NAME
    with safe_open(str(path), "pt") as f:
        header = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()} if state is None else state
    source = header.get(_BACKBONE_SOURCE)
    if source is not None:
        found = _backbone(model)
        if found is None:
            raise ValueError(f"{path}: names backbone weights but the model has no backbone")
        sha256 = header.get(_BACKBONE_SHA256, "")
        try:
            found[1].load_weights(source, sha256)
        except (OSError, ValueError, RuntimeError) as e:
            raise ValueError(f"{model_dir}: the model needs its backbone weights '{source}' "
                             f"(SHA-256 {sha256[:16]}...): {e}") from e
    load_state(model, tensors, path)


def load_model(model_dir: str | Path, device: str | torch.device = "cpu"
               ) -> tuple[nn.Module, ModelCard]:
    """Rebuild the model from its card, load its weights and return it in eval mode."""
    from ml.student.models import build_model

    card = load_card(model_dir)
    # Built without fetching backbone weights: load_weights reads the file the checkpoint names.
    model = build_model(replace(card.student, backbone_weights="none"))
    load_weights(model, model_dir)
    return model.to(device).eval(), card


def load_train_state(model_dir: str | Path) -> dict[str, Any] | None:
    """The saved optimizer / EMA / epoch state, or None if there is none."""
    path = Path(model_dir) / TRAIN_STATE_NAME
    if not path.is_file():
        return None
    return load_torch_checkpoint(path)


def _weights_sha256(model_dir: Path) -> str:
    return sha256_file(model_dir / WEIGHTS_NAME)


def model_id(model_dir: str | Path) -> str:
    """First 12 hex digits of the SHA-256 of the weights file."""
    return _weights_sha256(Path(model_dir))[:12]


class ModelFolder:
    """One model folder, opened once: what a training run or a prediction reads of it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"ModelFolder({str(self.path)!r})"

    @property
    def is_model(self) -> bool:
        return is_model(self.path)

    @cached_property
    def card(self) -> ModelCard:
        """The model card (FileNotFoundError if the folder holds no trained model)."""
        return load_card(self.path)

    @cached_property
    def train_state(self) -> dict[str, Any] | None:
        """The saved optimizer / EMA / epoch state, or None."""
        return load_train_state(self.path)

    @cached_property
    def model_id(self) -> str:
        return model_id(self.path)

    @property
    def last(self) -> ModelFolder:
        """The run's latest state (``last/``), beside its best weights."""
        return ModelFolder(self.path / LAST_NAME)

    @property
    def can_resume(self) -> bool:
        return can_resume(self.path)

    def load_weights(self, model: nn.Module,
                     state: Mapping[str, torch.Tensor] | None = None) -> None:
        """:func:`load_weights` from this folder into ``model``."""
        load_weights(model, self.path, state)


# -- finding model folders -------------------------------------------------------------------

def _root(project_or_dir: Project | str | Path) -> Path:
    """A project's models folder, or the folder given."""
    models_dir = getattr(project_or_dir, "models_dir", None)
    return Path(models_dir()) if callable(models_dir) else Path(project_or_dir)


def list_models(project_or_dir: Project | str | Path) -> list[Path]:
    """Trained model folders anywhere below a project's models folder (or a folder), oldest
    first by the time their weights were written; a run's ``last/`` state is not one."""
    root = _root(project_or_dir)
    if not root.is_dir():
        return []
    found = [p.parent for p in root.rglob(WEIGHTS_NAME)
             if p.parent.name != LAST_NAME and is_model(p.parent)]
    return sorted(found, key=lambda d: ((d / WEIGHTS_NAME).stat().st_mtime, str(d)))


def current_model(project_or_dir: Project | str | Path) -> Path | None:
    """The most recently written model folder of :func:`list_models`, or None."""
    models = list_models(project_or_dir)
    return models[-1] if models else None


def can_resume(run_dir: str | Path) -> bool:
    """True when ``run_dir`` holds a training state to resume."""
    return (Path(run_dir) / LAST_NAME / TRAIN_STATE_NAME).is_file()


def resumable_run(project_or_dir: Project | str | Path) -> Path | None:
    """The training run (folder with a ``last/`` state) saved most recently, or None."""
    root = _root(project_or_dir)
    if not root.is_dir():
        return None
    runs = [p.parent.parent for p in root.rglob(TRAIN_STATE_NAME) if p.parent.name == LAST_NAME]
    return max(runs, default=None,
               key=lambda d: ((d / LAST_NAME / TRAIN_STATE_NAME).stat().st_mtime, str(d)))


def find_model(model_id_: str, project_or_dir: Project | str | Path,
               recorded: str | Path | None = None) -> Path | None:
    """The folder of the model with id ``model_id_``, if it is still there.

    Tried in order: ``recorded`` (the folder a prediction names), ``<models>/<id>``, then every
    model folder whose weights hash to the id.
    """
    root = _root(project_or_dir)
    for d in [Path(p) for p in (recorded,) if p] + [root / model_id_]:
        if (d / CARD_NAME).is_file():
            return d
    if not model_id_:
        return None
    return next((d for d in list_models(root) if _weights_sha256(d).startswith(model_id_)),
                None)


def new_model_dir(project_or_dir: Project | str | Path, prefix: str = "student") -> Path:
    """A fresh, not yet existing ``<prefix>-<date>-<time>`` folder for a training run."""
    root = _root(project_or_dir)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out, n = root / f"{prefix}-{stamp}", 1
    while out.exists():
        n += 1
        out = root / f"{prefix}-{stamp}-{n}"
    return out
