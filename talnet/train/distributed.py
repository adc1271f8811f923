"""This process's place in a `torchrun` launch (rank, world size, local rank), read from
torchrun's environment in one place, and the few collectives the trainer needs from it."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, replace

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Distributed:
    """Rank, world size and local rank of this process; 0, 1, 0 when not under torchrun."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Distributed:
        """What torchrun set (RANK, WORLD_SIZE, LOCAL_RANK); the trainer reads them only here."""
        env = os.environ if environ is None else environ
        return cls(
            rank=int(env.get("RANK", "0")),
            world=int(env.get("WORLD_SIZE", "1")),
            local_rank=int(env.get("LOCAL_RANK", "0")),
        )

    @property
    def active(self) -> bool:
        """Whether several processes train together (and so share gradients and losses)."""
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """Whether this process speaks for all: it logs, evaluates and writes the run's files."""
        return self.rank == 0

    def device_for(self, device: str) -> str:
        """`device`, narrowed to this process's own GPU when several processes share a machine."""
        if self.active and device.startswith("cuda"):
            return f"cuda:{self.local_rank}"
        return device

    @contextmanager
    def joined(self, device: str) -> Iterator[Distributed]:
        """Join the process group for the block (gloo on CPU, nccl on GPU) and yield its view."""
        group = self.start(device)
        try:
            yield group
        except BaseException:
            # A gloo group still open when Python exits on an error aborts the process (SIGABRT,
            # "terminate called without an active exception"), and torchrun then reports the
            # abort, not the error; closed, the error and its exit status come through. An nccl
            # group is left to torchrun, which ends the other ranks: its teardown may wait for them.
            if group.active and dist.get_backend() == "gloo":
                group.close()
            raise
        group.close()

    def start(self, device: str) -> Distributed:
        """Join the process group unless already in one; the group's own rank and size."""
        if not self.active:
            return replace(self, rank=0, world=1)
        if not dist.is_initialized():
            # torch._dynamo, imported lazily by the first optimizer or DDP wrapper, keeps a group
            # that exists at its import alive past destroy_process_group; the group's threads then
            # race the exit, and a run that finished may abort ("terminate called without an
            # active exception"). Imported before the group, it holds none.
            import torch._dynamo  # noqa: F401

            backend = "nccl" if device.startswith("cuda") else "gloo"
            if backend == "nccl":  # nccl binds to the current device, so pick ours first
                torch.cuda.set_device(self.local_rank)
            dist.init_process_group(backend)
        return replace(self, rank=dist.get_rank(), world=dist.get_world_size())

    def close(self) -> None:
        """Leave the process group (nothing to do for a single process)."""
        if self.active:
            dist.destroy_process_group()

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """`model` behind DistributedDataParallel when several processes train, else itself."""
        if self.active:
            return torch.nn.parallel.DistributedDataParallel(model)
        return model

    def no_sync(self, trainer: torch.nn.Module) -> AbstractContextManager:
        """A block whose backward passes only accumulate gradients (DDP shares them at the next
        backward outside one); nothing to hold back for a single process."""
        if self.active:
            return trainer.no_sync()
        return nullcontext()

    def sum(self, tensor: torch.Tensor) -> None:
        """Sum `tensor` over every process, in place."""
        if self.active:
            dist.all_reduce(tensor)

    def gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """Every process's `tensor`, in rank order (all must call it, with equal shapes)."""
        if not self.active:
            return [tensor]
        tensors = [torch.empty_like(tensor) for _ in range(self.world)]
        dist.all_gather(tensors, tensor)
        return tensors

    def barrier(self) -> None:
        """Wait until every process gets here."""
        if self.active:
            dist.barrier()
