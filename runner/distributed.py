"""Data-parallel runs on torch.distributed, launched by torchrun (one process per device).

`init` joins the job described by torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT): NCCL on GPUs (rank r uses GPU LOCAL_RANK), gloo on CPUs. Without
those variables (or with WORLD_SIZE=1) nothing is initialised and every helper here is the
identity, so a plain `python train.py` runs exactly as a single process always did.

Conventions of a run on N processes:
- `--batch_size` is the global batch: each rank takes batch_size / N images (an error when N
  does not divide it) and the learning rates are those of the single-process run ("fixed
  global batch"), so the same flags give the same training on any number of processes.
- Every rank holds identical weights and alphas: DDP averages the weight gradients, the
  architect averages every gradient list it computes (`average_gradients`), and the same seed
  gives the same initial state (rank 0's is broadcast as well).
- BatchNorm is per rank: each rank normalises with its own shard's batch statistics (SyncBatchNorm
  is GPU-only, and DARTS cells use BN everywhere); running statistics are averaged over the ranks
  before each evaluation and checkpoint (`average_buffers`), so all ranks evaluate and save
  the same model. With N > 1 the training therefore differs from the single-process one only
  through the batch statistics, which come from batch_size / N images instead of batch_size.
- Metrics are summed over the ranks (sums and counts) before anything is logged; only rank 0
  writes files; a collective that waits longer than `--dist_timeout` seconds ends the job.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from runner.errors import EXIT_PEER_FAILED, OneLineError
from runner.training import resolve_device

DEFAULT_TIMEOUT_S = 600.0
LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
_job = {"timeout_s": DEFAULT_TIMEOUT_S}  # settings of the job this process joined


class PeerFailedError(ValueError):
    """Another rank failed while this one was ready; it printed the reason."""


# ----------------------------------------------------------------------------- the job
def launched() -> bool:
    """Started by torchrun (or alike) as one of several processes."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(device_name: str = "auto", timeout_s: float = DEFAULT_TIMEOUT_S) -> torch.device:
    """Join the job when launched as several processes; return this rank's device."""
    if not launched():
        return resolve_device(device_name)
    if is_enabled():
        return _rank_device(device_name, int(os.environ["LOCAL_RANK"]))
    missing = [name for name in LAUNCH_VARIABLES if name not in os.environ]
    if missing:
        raise ValueError(f"WORLD_SIZE is {os.environ['WORLD_SIZE']} but {', '.join(missing)} "
                         f"is not set; start several processes with torchrun (see "
                         f"docs/reference/distributed.md)")
    device = _rank_device(device_name, int(os.environ["LOCAL_RANK"]))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    _job["timeout_s"] = timeout_s
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return device


def _rank_device(name: str, local_rank: int) -> torch.device:
    """cpu, or the GPU LOCAL_RANK of this node ('auto' and 'cuda[:N]' alike)."""
    device = resolve_device("cuda" if name.startswith("cuda") else name)
    if device.type != "cuda":
        return device
    if local_rank >= torch.cuda.device_count():
        raise ValueError(f"LOCAL_RANK {local_rank} but this node has only "
                         f"{torch.cuda.device_count()} GPUs; lower --nproc_per_node")
    return torch.device("cuda", local_rank)


def is_enabled() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_enabled() else 0


def world_size() -> int:
    return dist.get_world_size() if is_enabled() else 1


def is_main() -> bool:
    """The rank that writes logs, TensorBoard events, checkpoints and results."""
    return rank() == 0


def barrier() -> None:
    if is_enabled():
        dist.barrier()


def cleanup() -> None:
    """Leave the job (a no-op when alone)."""
    if is_enabled():
        dist.destroy_process_group()


def shard(global_batch_size: int) -> dict:
    """BatchLoader arguments of this rank for a global batch (fixed-global-batch rule)."""
    size = world_size()
    if global_batch_size % size:
        raise ValueError(f"--batch_size {global_batch_size} is the global batch and must be a "
                         f"multiple of the {size} processes")
    return {"batch_size": global_batch_size // size, "rank": rank(), "world_size": size}


# ----------------------------------------------------------------------------- agreement
def agree(step: Callable):
    """Run `step` on every rank; if it raises anywhere, every rank raises (none waits)."""
    try:
        result, error = step(), None
    except Exception as caught:  # noqa: BLE001 - re-raised below, on this rank
        result, error = None, caught
    first_failed = _first_failed_rank(error is not None)
    if error is not None:
        raise error
    if first_failed is not None:
        raise PeerFailedError(f"stopping: rank {first_failed} failed while setting up (its "
                              f"message says why)")
    return result


def _first_failed_rank(failed: bool) -> int | None:
    if not is_enabled():
        return 0 if failed else None
    flag = torch.tensor([rank() if failed else world_size()], device=_collective_device())
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return None if int(flag) == world_size() else int(flag)


def broadcast_object(value):
    """Rank 0's `value` on every rank (a path, a small dict)."""
    if not is_enabled():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def describe_failure(error: BaseException) -> str:
    """One line for a collective that failed: a peer stopped, or waited past the timeout."""
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
    return (f"rank {rank()} of {world_size()}: a collective failed or waited longer than "
            f"{_job['timeout_s']:g} s (--dist_timeout); another rank has probably stopped (see its "
            f"message) or is much slower: {first_line}")


# under torchrun a RuntimeError is a collective that failed (a peer stopped or timed out); alone
# it is a bug, whose traceback is wanted
PEER_FAILED = OneLineError((RuntimeError,), EXIT_PEER_FAILED, message=describe_failure,
                           applies=is_enabled)


# ----------------------------------------------------------------------------- reductions
def _collective_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def mean_tensor(value: torch.Tensor) -> torch.Tensor:
    """The mean of `value` over the ranks (the tensor itself when alone)."""
    if not is_enabled():
        return value
    total = value.detach().clone()
    dist.all_reduce(total)
    return total / world_size()


def mean_floats(values: dict) -> dict:
    """{name: mean over the ranks} of a dict of floats, in one collective."""
    if not is_enabled():
        return dict(values)
    keys = list(values)
    total = torch.tensor([float(values[key]) for key in keys], dtype=torch.float64,
                         device=_collective_device())
    dist.all_reduce(total)
    return dict(zip(keys, (total / world_size()).tolist(), strict=True))


def sum_meters(meters: dict) -> dict:
    """Make every AverageMeter's sum and count the totals over the ranks (in place)."""
    if is_enabled():
        totals = torch.tensor([[m.sum, m.count] for m in meters.values()], dtype=torch.float64,
                              device=_collective_device())
        dist.all_reduce(totals)
        for meter, (total, count) in zip(meters.values(), totals.tolist(), strict=True):
            meter.sum, meter.count = total, int(round(count))
    return meters


def average_gradients(grads: list[torch.Tensor]) -> list[torch.Tensor]:
    """The mean of a gradient list over the ranks, in one flat all-reduce (the Architect's
    `reduce_gradients`: alpha gradients, and the weight gradients of a second-order step)."""
    if not is_enabled() or not grads:
        return grads
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size()
    return [part.view_as(g) for part, g in zip(flat.split([g.numel() for g in grads]), grads,
                                               strict=True)]


def average_buffers(module: nn.Module) -> None:
    """Average floating buffers (BatchNorm running statistics) over the ranks, in place."""
    if not is_enabled():
        return
    for buffer in module.buffers():
        if buffer.is_floating_point():
            dist.all_reduce(buffer)
            buffer /= world_size()


def broadcast_parameters(parameters) -> None:
    """Rank 0's values of `parameters` on every rank (e.g. the alphas, which DDP skips)."""
    if not is_enabled():
        return
    with torch.no_grad():
        for parameter in parameters:
            dist.broadcast(parameter, src=0)


# ----------------------------------------------------------------------------- DDP
def data_parallel(module: nn.Module, device: torch.device) -> nn.Module:
    """`module` in DistributedDataParallel (itself when alone). Buffers are synced from rank 0
    once, at wrapping; after that each rank keeps its own BN statistics (see module doc)."""
    if not is_enabled():
        return module
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids, forward_sync_buffers=False)


class WeightsView(nn.Module):
    """A supernet as DDP should see it: the weights of its submodules, not the alphas it
    holds, directly or in an architecture submodule (those are trained by the architect and
    averaged by it). Calling the view calls the supernet; the parameters are the supernet's
    own tensors."""

    def __init__(self, supernet: nn.Module):
        super().__init__()
        alpha_ids = {id(alpha) for alpha in supernet.alphas()}
        self.parts = nn.ModuleList(  # not a child holding alphas only (an architecture)
            child for child in supernet.children()
            if not (params := list(child.parameters()))
            or any(id(p) not in alpha_ids for p in params))
        self._supernet = (supernet,)  # a tuple: not registered, so the alphas stay outside
        if {id(p) for p in self.parameters()} != {id(p) for p in supernet.weights()}:
            raise ValueError("the supernet holds weights outside its submodules; DDP would "
                             "miss them")

    def forward(self, *inputs):
        return self._supernet[0](*inputs)


def data_parallel_weights(supernet: nn.Module, device: torch.device) -> nn.Module:
    """DDP over the supernet's weights only (the supernet itself when alone)."""
    if not is_enabled():
        return supernet
    broadcast_parameters(supernet.alphas())
    return data_parallel(WeightsView(supernet), device)
