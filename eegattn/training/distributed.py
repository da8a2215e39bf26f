"""Data-parallel training: the process group around the one training loop.

There is no second trainer here. ``torchrun`` starts the processes, :func:`init_distributed`
joins its process group, and :class:`DistContext` gives the loop in
:mod:`eegattn.training.loop` the few collective operations it needs (wrap the model in
``DistributedDataParallel``, sum the epoch's losses, share rank 0's validation record, gather
RNG states for the checkpoint, agree on a stop request). A plain process is world size 1: no
process group, no wrapper, nothing collective, so one process pays nothing for it.

Launch (the same command and options as one process)::

    torchrun --standalone --nproc-per-node 4 -m eegattn train --challenge 1 --device cuda ...

    # several machines: the same command on every node, with a shared rendezvous
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d \\
        --rdzv-endpoint HOST0:29400 --rdzv-id c1-run-1 -m eegattn train --challenge 1 ...

``gloo`` serves the CPU and ``nccl`` GPUs (one per process, ``cuda:LOCAL_RANK``). The release
folder, the cache and the runs folder must be on storage every node sees; rank 0 builds the
window cache first while the others wait, then all read it. Why plain DDP rather than
Lightning Fabric: it is part of torch (no new dependency) and a world-size-1 run does not
touch it at all; docs/training.md has the measurement.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["DistContext", "init_distributed", "launched_by_torchrun"]


def launched_by_torchrun() -> bool:
    """True when this process was started by ``torchrun`` with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


@dataclass
class DistContext:
    """Rank, world size and device of this process; world size 1 means no process group."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    device: torch.device | None = None
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` itself in one process, else ``DistributedDataParallel(module)``."""
        if self.world_size == 1:
            return module
        from torch.nn.parallel import DistributedDataParallel

        if self.device is not None and self.device.type == "cuda":
            return DistributedDataParallel(module, device_ids=[self.device.index])
        return DistributedDataParallel(module)

    def _tensor(self, values) -> torch.Tensor:
        device = self.device if self.device is not None and self.device.type == "cuda" else "cpu"
        return torch.tensor(values, dtype=torch.float64, device=device)

    def sum(self, values: tuple) -> tuple:
        """Element-wise sum of ``values`` (floats) over all processes."""
        if self.world_size == 1:
            return tuple(values)
        t = self._tensor(list(values))
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return tuple(float(v) for v in t.cpu())

    def any(self, flag: bool) -> bool:
        """True on every process if ``flag`` is true on any."""
        if self.world_size == 1:
            return bool(flag)
        t = self._tensor([1.0 if flag else 0.0])
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def broadcast_object(self, obj):
        """Rank 0's ``obj`` on every process."""
        if self.world_size == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather_objects(self, obj) -> list:
        """``[obj of rank 0, obj of rank 1, ...]`` on every process."""
        if self.world_size == 1:
            return [obj]
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False


def init_distributed(device: str | torch.device = "cpu", backend: str | None = None
                     ) -> DistContext:
    """Join torchrun's process group (``gloo`` on the CPU, ``nccl`` on CUDA) and return this
    process's context; outside torchrun (or with one process) a world-size-1 context.

    An already initialised group is reused (and left open on :meth:`DistContext.close`).
    """
    device = torch.device(device) if not isinstance(device, torch.device) else device
    if dist.is_available() and dist.is_initialized():
        owns = False
    elif launched_by_torchrun():
        dist.init_process_group(backend=backend or ("nccl" if device.type == "cuda" else "gloo"))
        owns = True
    else:
        return DistContext(device=device)
    rank, world = dist.get_rank(), dist.get_world_size()
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return DistContext(world_size=world, rank=rank, local_rank=local_rank, device=device,
                       owns_group=owns)


def current_context(device) -> DistContext:
    """The context of an already initialised process group, or world size 1."""
    if dist.is_available() and dist.is_initialized():
        return init_distributed(device)
    return DistContext(device=torch.device(device) if not isinstance(device, torch.device)
                       else device)
