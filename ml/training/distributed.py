"""Data-parallel training over several processes (``torchrun ... b2p train --ddp``): the plumbing.

torchrun starts one process per device and sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``. :func:`init_from_env` joins the process group (NCCL on
CUDA, gloo on the CPU); :func:`current` then tells the trainer where it stands. Without a group
:func:`current` describes one process and every helper of :class:`Dist` does nothing, so the
trainer keeps one code path.

The choices, each so that every rank holds the same state without broadcasting decisions:

* The student trains inside ``DistributedDataParallel``, which synchronises only parameters
  that require a gradient (a frozen backbone's are left out). Every trainable parameter takes
  part in each step, so ``find_unused_parameters`` stays off (it would cost a graph walk).
* Batch-norm running statistics are averaged over the ranks after every step instead of DDP's
  copy from rank 0 before each forward, so after a step every rank holds the same weights and
  buffers. The EMA is then updated on every rank from the same weights: every rank keeps the
  same EMA (one extra copy of the student per process, a few MB), which lets validation run
  sharded: each rank scores its share of the validation views and the confusion matrices are
  summed, so every rank computes the same metric and takes the same early-stopping decision.
* Each rank keeps only its share of the frozen-backbone feature cache. The cache lives in
  memory (nothing is written, so a shared filesystem raises no question) and each rank encodes
  its own views: the encoding is split N ways and nobody waits at a barrier for rank 0.
* Rank 0 alone writes checkpoints (then all ranks meet at a barrier, so a rank that reads the
  folder next, a resume or a second round, finds it whole) and reports progress.
* A stop request (Ctrl-C) counts when any rank has one, so all ranks stop after the same step.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as tdist
from torch import nn

from ml.common.device import resolve_device

LAUNCH_ENV = ("RANK", "WORLD_SIZE")


def launched() -> bool:
    """True in a process started by torchrun (its environment names a rank and a world size)."""
    return all(k in os.environ for k in LAUNCH_ENV)


def init_from_env(device: str | None = "auto") -> Dist:
    """Join the process group torchrun describes: NCCL on CUDA (one GPU per local rank), gloo
    on the CPU. RuntimeError when not started by torchrun or when a rank has no GPU."""
    if not launched():
        raise RuntimeError("not started by torchrun: RANK and WORLD_SIZE are not set")
    dev = resolve_device(device)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if dev.type == "cuda":
        if local >= torch.cuda.device_count():
            raise RuntimeError(f"local rank {local} has no GPU ({torch.cuda.device_count()} "
                               "found): start at most one process per GPU")
        torch.cuda.set_device(local)
        # device_id (torch >= 2.3) binds the group to this GPU at once
        bind = ({"device_id": torch.device("cuda", local)} if "device_id"
                in inspect.signature(tdist.init_process_group).parameters else {})
        tdist.init_process_group("nccl", **bind)
    else:
        tdist.init_process_group("gloo")
    return current()


def teardown() -> None:
    """Leave the process group, if this process joined one."""
    if tdist.is_available() and tdist.is_initialized():
        tdist.destroy_process_group()


def current() -> Dist:
    """Where this process stands: its rank in the process group, or a single process."""
    if not (tdist.is_available() and tdist.is_initialized()):
        return Dist()
    cuda = tdist.get_backend() == "nccl"
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return Dist(tdist.get_rank(), tdist.get_world_size(), local,
                torch.device("cuda", local) if cuda else torch.device("cpu"), True)


class _Step(nn.Module):
    """The student as a training step calls it: decode cached features, or run it whole.

    DDP synchronises gradients only through ``forward``, so both paths go through it.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, feats: list[torch.Tensor] | None, x: torch.Tensor
                ) -> dict[str, torch.Tensor]:
        return self.model.decode(feats, x) if feats is not None else self.model(x)


@dataclass(frozen=True)
class Dist:
    """This process's place in a data-parallel run; a single process by default."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device | None = None  # the device of this rank's collectives and student
    active: bool = False  # a process group is up

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes and reports."""
        return self.rank == 0

    def wrap(self, model: nn.Module) -> nn.Module:
        """``model`` as ``step(feats or None, x)``; DistributedDataParallel when a group is up."""
        step = _Step(model)
        if not self.active:
            return step
        ids = [self.local_rank] if self.device is not None and self.device.type == "cuda" else None
        ddp = nn.parallel.DistributedDataParallel
        # buffers: averaged after each step (average_buffers), not copied from rank 0 before
        # each forward (newer torch renamed the switch; both still copy them once at the start)
        off = ("forward_sync_buffers" if "forward_sync_buffers"
               in inspect.signature(ddp.__init__).parameters else "broadcast_buffers")
        return ddp(step, device_ids=ids, **{off: False})

    def sampler(self, n: int, seed: int) -> torch.utils.data.DistributedSampler | None:
        """A DistributedSampler over ``range(n)`` (every rank a different share, as many items
        on each), or None in a single process."""
        if not self.active:
            return None
        return torch.utils.data.DistributedSampler(range(n), self.world, self.rank,
                                                   shuffle=True, seed=seed)

    def share(self, n: int, pad: bool = False, seed: int = 0) -> list[int]:
        """This rank's items of ``range(n)``: every world-th of a seeded order (all of them,
        in order, in a single process). ``pad`` repeats items so every rank gets as many."""
        if not self.active:
            return list(range(n))
        order = np.random.default_rng(seed).permutation(n).tolist()
        if pad and n % self.world:  # cycle through the order again (n may be below world)
            order = (order * self.world)[: -(-n // self.world) * self.world]
        return order[self.rank::self.world]

    def reseed(self, rng: np.random.Generator, seed: int, epoch: int) -> None:
        """Give ``rng`` a state of its own for this rank and epoch (augmentation differs across
        ranks, and a resumed run draws as the uninterrupted one would)."""
        if self.active:
            rng.bit_generator.state = np.random.default_rng(
                [seed, self.rank, epoch]).bit_generator.state

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any."""
        if not self.active:
            return bool(flag)
        t = torch.tensor([int(bool(flag))], device=self.device)
        tdist.all_reduce(t, op=tdist.ReduceOp.MAX)
        return bool(t.item())

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Each value averaged over the ranks (same keys on every rank)."""
        if not self.active:
            return values
        keys = sorted(values)
        t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64,
                         device=self.device)
        tdist.all_reduce(t)
        return {k: float(v) / self.world for k, v in zip(keys, t.tolist(), strict=True)}

    def sum(self, array: np.ndarray) -> np.ndarray:
        """``array`` summed over the ranks."""
        if not self.active:
            return array
        t = torch.from_numpy(np.ascontiguousarray(array)).to(self.device)
        tdist.all_reduce(t)
        return t.cpu().numpy()

    @torch.no_grad()
    def average_buffers(self, model: nn.Module) -> None:
        """Average the batch-norm running statistics over the ranks (in one message)."""
        if not self.active:
            return
        bufs = [b for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                for b in (m.running_mean, m.running_var) if b is not None]
        if not bufs:
            return
        flat = torch.cat([b.reshape(-1).to(torch.float64) for b in bufs])
        tdist.all_reduce(flat)
        flat /= self.world
        i = 0
        for b in bufs:
            b.copy_(flat[i:i + b.numel()].view_as(b))
            i += b.numel()

    def barrier(self) -> None:
        """Wait for every rank."""
        if not self.active:
            return
        if self.device is not None and self.device.type == "cuda":
            tdist.barrier(device_ids=[self.local_rank])
        else:
            tdist.barrier()
