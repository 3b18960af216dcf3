"""One fit over the processes of a ``torch.distributed`` group, and the exact
loss of a global batch.

Data-parallel training runs through PyTorch's own engine,
:class:`~torch.nn.parallel.DistributedDataParallel` (DDP): every process
holds the whole model, trains on its share of each batch, and DDP averages
the gradients. The share of process ``rank`` among ``world_size`` is
``order[rank::world_size]`` of the epoch's order, the order a single-process
fit draws with the same seed (:class:`~skweighted._batching.EpochOrder`,
whose class-balanced draw is the one of
:class:`~skweighted.sampling.DistributedClassBalancedSampler`), so the
global batch ``j`` of ``batch_size * world_size`` rows is the single-process
fit's batch ``j``.

The trap this module exists for: a class-weighted loss is a weighted mean,
``sum(w * l) / sum(w)``, and the mean over processes (or over accumulated
micro-batches) of per-shard weighted means is not the weighted mean of the
global batch whenever the shards hold different class mixes. Here every
micro-batch's loss is ``sum(w * l)`` of its rows divided by the sum of the
weights over the whole optimizer step (all micro-batches, all processes:
one all-reduce, :func:`loss_scales`), times ``world_size`` to undo DDP's
averaging, so the gradient is the single-process gradient of the global
batch for every ``normalization`` (with ``"mean"``, the sum of weights is
the number of rows). Gradient accumulation is the same computation without
the processes.

A step is built before its first forward pass: the denominators depend only
on the labels and the weights (:func:`normalizer`), so a step's micro-batches
are drawn first (:func:`steps`), their denominators all-reduced, and each is
then trained with its final scale. Processes whose share of an epoch ends a
batch early run one more forward and backward pass on their last batch with
a scale of 0, so every process makes the same collective calls.
"""

import contextlib
import hashlib
import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ._compat import default_backend

#: skorch callbacks that print or write files: only rank 0 runs them.
_RANK0_ONLY = (
    "PrintLog",
    "ProgressBar",
    "Checkpoint",
    "TrainEndCheckpoint",
    "TensorBoard",
    "WandbLogger",
    "NeptuneLogger",
    "MlflowLogger",
    "SacredLogger",
)


@dataclass(frozen=True)
class Group:
    """The process group a fit trains over.

    Attributes
    ----------
    group : torch.distributed.ProcessGroup
    rank, world_size : int
    device : torch.device
        Where this process's collective tensors live (the CPU for gloo, the
        process's GPU for NCCL).
    """

    group: object
    rank: int
    world_size: int
    device: torch.device


def _dist():
    import torch.distributed as dist

    return dist


def _launched():
    """Whether a launcher (``torchrun``, ``accelerate launch``) set the
    environment of a process group of more than one process."""
    env = os.environ
    try:
        world = int(env.get("WORLD_SIZE", "1"))
    except ValueError:
        return False
    return world > 1 and "RANK" in env and "MASTER_ADDR" in env


def process_group(data_parallel, device):
    """The group of more than one process that ``fit`` trains over, or None.

    ``data_parallel='auto'`` trains data-parallel when a process group of
    more than one process is initialised, or when a launcher's environment
    describes one (it is then initialised here, with :func:`default_backend`
    for ``device``); ``False`` never; ``True`` requires a group.
    """
    if data_parallel is False:
        return None
    dist = _dist()
    if dist.is_available() and not dist.is_initialized() and _launched():
        dist.init_process_group(backend=default_backend(device))
    if not (dist.is_available() and dist.is_initialized()):
        if data_parallel is True:
            raise ValueError(
                "data_parallel=True needs a torch.distributed process group: "
                "call torch.distributed.init_process_group() first or launch "
                "the script with torchrun; data_parallel='auto' trains in one "
                "process when there is none."
            )
        return None
    world = dist.get_world_size()
    if world == 1 and data_parallel == "auto":
        return None
    backend = str(dist.get_backend())
    comm = torch.device("cpu")
    if "gloo" not in backend and "nccl" in backend:
        if not torch.cuda.is_available():
            raise ValueError(
                f"The process group's backend is {backend!r}, which needs a GPU, "
                f"but rank {dist.get_rank()} has none; use the 'gloo' backend "
                "for CPU training."
            )
        comm = torch.device("cuda", torch.cuda.current_device())
    return Group(dist.group.WORLD, dist.get_rank(), world, comm)


def resolve_device(device, group):
    """The device of this process: ``'cuda'`` means the GPU of its local rank."""
    dev = torch.device(device)
    if dev.type != "cuda":
        return dev
    if not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} on rank {group.rank}, which has no GPU "
            "(torch.cuda.is_available() is False); give every process a GPU "
            "or use device='cpu' with the gloo backend."
        )
    if dev.index is None:
        local = int(os.environ.get("LOCAL_RANK", group.rank))
        if local >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} on rank {group.rank} (local rank {local}), "
                f"but this machine has only {torch.cuda.device_count()} GPU(s); "
                "launch at most one process per GPU."
            )
        dev = torch.device("cuda", local)
    torch.cuda.set_device(dev)
    return dev


def _check_sampler(sampler, group):
    replicas = getattr(sampler, "num_replicas", None)
    if replicas is None:
        raise ValueError(
            f"iterator_train__sampler={type(sampler).__name__} gives every "
            f"process all rows, but this fit trains over {group.world_size} "
            "processes; use a sampler with num_replicas and rank (e.g. "
            "skweighted.sampling.DistributedClassBalancedSampler), or "
            "sampler= on the estimator."
        )
    if replicas != group.world_size:
        raise ValueError(
            f"iterator_train__sampler has num_replicas={replicas}, but the "
            f"process group has world_size={group.world_size}; build the "
            "sampler with num_replicas=None to take the group's size."
        )


def digest(*arrays):
    """A 56-bit digest of arrays (None included), equal across processes."""
    h = hashlib.blake2b(digest_size=7)
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        if a.dtype.kind == "O":
            h.update(repr(a.tolist()).encode())
        else:
            h.update(a.tobytes())
    return int.from_bytes(h.digest(), "little")


def agree(group, *, device, seed, labels, sampler=None):
    """Check this fit's setup on every process together; return
    ``(device, seed)``.

    Every process resolves its device, checks a user sampler's
    ``num_replicas`` and digests its labels (and sample weights: ``labels``
    is a tuple of arrays); one ``all_gather`` then shares the outcome, so
    every process raises (never a few, which would leave the others waiting)
    when a process's check failed or its labels differ from rank 0's. The
    seed is rank 0's; without one, rank 0 draws it, so every process draws
    the same batches.
    """
    error = None
    try:
        device = resolve_device(device, group)
        if sampler is not None:
            _check_sampler(sampler, group)
    except ValueError as exc:
        error = exc
    if seed is None and group.rank == 0:
        seed = int(torch.randint(2**31 - 1, ()).item())
    mine = torch.tensor(
        [error is not None, digest(*labels), seed or 0], device=group.device
    )
    shared = [torch.empty_like(mine) for _ in range(group.world_size)]
    _dist().all_gather(shared, mine, group=group.group)
    shared = torch.stack(shared).cpu().numpy()
    if error is not None:
        raise error
    failed = np.flatnonzero(shared[:, 0]).tolist()
    if failed:
        raise ValueError(
            f"Data-parallel fit stopped: rank(s) {failed} failed their checks "
            "before training (their errors say why)."
        )
    differ = np.flatnonzero(shared[:, 1] != shared[0, 1]).tolist()
    if differ:
        raise ValueError(
            f"y (or sample_weight) on rank(s) {differ} differs from rank 0's: "
            "every process must pass fit the same full data set (each trains "
            "on its own share; the class weights come from the full y)."
        )
    return device, int(shared[0, 2])


def all_reduce(tensor, group, op="sum"):
    """The sum (or max) of ``tensor`` over the group (itself without one)."""
    if group is None:
        return tensor
    dist = _dist()
    out = tensor.to(group.device, copy=True)
    dist.all_reduce(out, op=getattr(dist.ReduceOp, op.upper()), group=group.group)
    return out.to(tensor.device)


# -- the exact loss of a step ---------------------------------------------
def check_criterion(criterion):
    """Raise a TypeError for a criterion whose normalisation is unknown."""
    normalizer(criterion, None, None, check_only=True)


def normalizer(criterion, target, sample_weight, check_only=False):
    """What ``criterion``'s batch loss divides ``sum(w * l)`` by.

    A loss of :mod:`skweighted.losses` says itself (its ``normalizer``
    method: the sum of the per-sample weights, or the number of rows);
    PyTorch's ``CrossEntropyLoss`` / ``NLLLoss`` and ``BCEWithLogitsLoss``
    / ``BCELoss`` with ``reduction='mean'`` are known here.
    """
    if hasattr(criterion, "normalizer"):
        return None if check_only else criterion.normalizer(target, sample_weight)
    mean = getattr(criterion, "reduction", None) == "mean"
    if mean and isinstance(criterion, nn.CrossEntropyLoss | nn.NLLLoss):
        if check_only:
            return None
        keep = target != criterion.ignore_index
        if criterion.weight is None:
            return keep.sum().to(torch.float32)
        return (criterion.weight[target.clamp_min(0)] * keep).sum()
    if mean and isinstance(criterion, nn.BCEWithLogitsLoss | nn.BCELoss):
        if check_only:
            return None
        return torch.tensor(float(target.numel()), device=target.device)
    raise TypeError(
        f"The criterion {type(criterion).__name__} does not say how it "
        "normalises a batch, which data-parallel training and "
        "accumulate_grad_batches need to divide by the sum of the weights of "
        "the whole step. Use a loss from skweighted.losses, or PyTorch's "
        "CrossEntropyLoss, NLLLoss, BCEWithLogitsLoss with reduction='mean'."
    )


def loss_scales(denominators, group):
    """The factor of each micro-batch's ``sum(w * l)`` in one optimizer step.

    ``world_size / D`` for every micro-batch, ``D`` the sum of
    ``denominators`` over the step's micro-batches and every process (one
    all-reduce): the step then trains on the weighted mean of the global
    batch (DDP divides the gradients' sum by ``world_size``). A step whose
    weights are all zero trains on a loss of 0, as a single batch does.
    """
    local = torch.stack([d.to(torch.float32) for d in denominators])
    total = all_reduce(local.sum(), group)
    world = 1 if group is None else group.world_size
    scale = world / total.clamp_min(torch.finfo(total.dtype).tiny)
    return [scale] * len(denominators)


@dataclass
class Micro:
    """A micro-batch of a step; ``real=False`` for a filler (scale 0)."""

    batch: object
    real: bool = True


@dataclass
class Step:
    """The micro-batches of one optimizer step of this process."""

    micro: list

    @property
    def last(self):
        """The batch the per-batch callbacks see: the step's last real one
        (a step of fillers only: the batch repeated)."""
        real = [m.batch for m in self.micro if m.real]
        return real[-1] if real else self.micro[-1].batch


def steps(iterator, accumulate, group):
    """Group ``iterator``'s batches into optimizer steps of ``accumulate``.

    With a group, every process makes as many steps as the process with
    the most batches; a process that runs out repeats its last batch as a
    filler (trained with a scale of 0).
    """
    n = len(iterator)
    if group is not None:
        n = int(all_reduce(torch.tensor(n), group, op="max").item())
    batches = iter(iterator)
    micro, last = [], None
    for i in range(n):
        batch = next(batches, None)
        if batch is None:
            micro.append(Micro(last, real=False))
        else:
            last = batch
            micro.append(Micro(batch))
        if len(micro) == accumulate or i == n - 1:
            yield Step(micro)
            micro = []


def share(group):
    """The positions of an epoch's order this process trains on."""
    return None if group is None else slice(group.rank, None, group.world_size)


class Share(torch.utils.data.Sampler):
    """This process's rows of each epoch for a ``DataLoader``: positions
    ``rank::world_size`` of ``order`` (an :class:`EpochOrder`, or None for
    the rows in order)."""

    def __init__(self, order, n, positions):
        self.order = order
        self.n = n
        self.positions = positions

    def __len__(self):
        return len(range(self.n)[self.positions])

    def __iter__(self):
        if self.order is None:
            return iter(range(self.n)[self.positions])
        return iter(self.order.indices()[self.positions].tolist())


@contextlib.contextmanager
def training(net, group, accumulate):
    """Train ``net`` over ``group`` (DDP around its module) with
    ``accumulate`` micro-batches per step; the net is plain again afterwards,
    and every process holds rank 0's parameters."""
    ddp = None
    if group is not None:
        device = torch.device(net.device)
        ddp = nn.parallel.DistributedDataParallel(
            net.module_,
            device_ids=[device.index] if device.type == "cuda" else None,
            process_group=group.group,
        )
    # vars(): skorch refuses modules set outside its initialize methods
    vars(net).update(_group=group, _ddp=ddp, _accumulate=accumulate)
    try:
        yield net
        if group is not None:
            # rank 0's model everywhere, also after a callback that only rank
            # 0 runs changed it (e.g. Checkpoint(load_best=True))
            for tensor in net.module_.state_dict().values():
                _dist().broadcast(tensor, src=0, group=group.group)
    finally:
        for name in ("_group", "_ddp", "_accumulate"):
            vars(net).pop(name, None)


def no_sync(ddp, skip):
    """DDP's ``no_sync`` (no gradient all-reduce) when ``skip``."""
    return ddp.no_sync() if ddp is not None and skip else contextlib.nullcontext()


def rank0_only(callback):
    """Whether ``callback`` prints or writes (rank 0 alone runs it)."""
    return any(k.__name__ in _RANK0_ONLY for k in type(callback).__mro__)
