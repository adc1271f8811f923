"""This process's place in a `torchrun` launch (rank, world size, local rank), read from
torchrun's environment in one place, and the few collectives the trainer needs from it."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
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
            # torch._dynamo, imported lazily by the first optimizer, keeps a group
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

    def share_parameters(self, model: torch.nn.Module) -> None:
        """Give every process rank 0's parameters and buffers, so all replicas start equal."""
        if self.active:
            for tensor in [*model.parameters(), *model.buffers()]:
                dist.broadcast(tensor.data, src=0)

    def average_gradients(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        """Replace each gradient by its mean over every process (one all-reduce of one flat
        buffer); a parameter this process left without a gradient counts as zeros.

        By hand rather than by DistributedDataParallel: its C++ reducer can hold the last
        reference to the group, and freeing it then destroys the group while holding the GIL,
        waiting for a gloo thread that needs the GIL to free its last collective's tensors (a
        finished run hung at exit, 1 of 40 runs under load). Same sums as DDP's, same losses."""
        if not self.active:
            return
        params = list(parameters)
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        flat.div_(self.world)  # divided first, as DDP does, so a float16 sum cannot overflow
        dist.all_reduce(flat)
        offset = 0
        for p in params:
            n = p.grad.numel()
            p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
            offset += n

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
