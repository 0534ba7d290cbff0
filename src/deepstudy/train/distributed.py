"""Training on more than one process: `torchrun --nproc_per_node=N -m deepstudy run NAME ...`.

torchrun starts N copies of the command and tells each its RANK, LOCAL_RANK and WORLD_SIZE.
Each copy joins one process group (NCCL between GPUs, gloo between CPU processes), wraps the
model in DistributedDataParallel, and trains on its shard of every batch:

- Every rank draws the same shuffled order and the same augmentation from the same seeded
  generator, forms the same global batch of `train.batch_size` images, and keeps its own
  contiguous 1/N of it.  DDP averages the gradients, so a step sees exactly the batch a
  single process would have seen; only BatchNorm statistics (per shard) and float summation
  order differ.  Resuming works as in one process: the generator's state is everyone's.
- Validation is sharded the same way and the loss and correct counts are summed over ranks,
  so every rank takes the same decisions (best epoch, early stopping).
- Rank 0 alone writes: run directory, checkpoints, history, metrics, plots, log lines.

Without torchrun (WORLD_SIZE unset or 1) none of this runs and nothing changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


SINGLE = World()


def requested() -> int:
    """How many processes torchrun started this one among (1 without torchrun), read before
    joining them."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def from_env() -> World:
    """The world torchrun describes in the environment, joined; SINGLE without torchrun."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return SINGLE
    world = World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(world.local_rank)
            dist.init_process_group("nccl")
        else:
            dist.init_process_group("gloo")
    return world


def device_for(world: World, requested: torch.device) -> torch.device:
    """Each rank on its own GPU (cuda:LOCAL_RANK); CPU ranks share the CPU."""
    if world.distributed and requested.type == "cuda":
        return torch.device("cuda", world.local_rank)
    return requested


def wrap(model: nn.Module, world: World) -> nn.Module:
    if not world.distributed:
        return model
    device = next(model.parameters()).device
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def shard(n: int, world: World) -> slice:
    """This rank's contiguous part of n items (sizes differ by at most one)."""
    base, extra = divmod(n, world.size)
    start = world.rank * base + min(world.rank, extra)
    return slice(start, start + base + (world.rank < extra))


def take(x, part: slice):
    """Rows `part` of a batch's inputs: a tensor, or a tuple of tensors (a text batch's token ids
    and lengths), each sliced alike."""
    if isinstance(x, tuple):
        return type(x)(*(v[part] for v in x))
    return x[part]


def sum_over_ranks(*values: torch.Tensor, world: World) -> list[torch.Tensor]:
    """The element-wise sum over ranks of each tensor (unchanged in a single process)."""
    if not world.distributed:
        return list(values)
    packed = torch.stack([v.detach().double().reshape(()) for v in values])
    dist.all_reduce(packed)
    return list(packed.unbind())


def agree(flag: bool, world: World) -> bool:
    """True on every rank if it is true on any (e.g. rank 0 saw the time budget run out)."""
    if not world.distributed:
        return flag
    t = torch.tensor([int(flag)], dtype=torch.int64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def sync_buffers(model: nn.Module, world: World) -> None:
    """Give every rank rank 0's BatchNorm running statistics, so that all evaluate one model."""
    if not world.distributed:
        return
    for b in model.buffers():
        dist.broadcast(b, src=0)


def barrier(world: World) -> None:
    """Wait until every process is here (e.g. until process 0 has written a file all will read)."""
    if world.distributed:
        dist.barrier()


def finish(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()
