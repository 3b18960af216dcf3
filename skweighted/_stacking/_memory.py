"""How many models of a stack fit in a memory budget.

The budget covers what a whole search holds for its stacks: its records
(each fit's initial module, class weights and the settings its row orders
are drawn from), the data they train on, the results trained so far, and
the stack chunks training at once. The session counts what it holds
(:func:`held_bytes`) and gives the rest to the chunks of the group it
trains, shared among the workers that train chunks at the same time.

Per model, a stack holds its parameters five times (the weights, their
gradient and its flat copy, two optimizer moments), one batch of activations
(the forward outputs kept for the backward pass, and their gradients), the
epoch of its row order being read, and a window of its batch schedule (the
rows of each step, with their labels and weights). The activations are
measured once on the real module with forward hooks.

On a CPU, a stack of convolutional networks is also cut into chunks whose
largest activation (one layer's output for all the chunk's models and one
batch) stays under :data:`CPU_CONV_ACTIVATION`: beyond it, each step spends
more in cache misses and in the page faults of fresh large allocations than
stacking saves (``benchmarks/bench_stacking_conv.py``).
"""

import dataclasses

import torch
from torch import nn

from . import _rows

#: Default budget on the CPU: the stacked state and one batch of activations.
DEFAULT_CPU_BUDGET = 1 << 30  # 1 GiB
#: Default budget on a GPU: this fraction of its free memory.
GPU_FREE_FRACTION = 0.5
#: On a CPU, a convolutional stack's largest activation per chunk, in bytes
#: (but two models at least: one model alone trains as slowly as its
#: separate fit). Measured with ``benchmarks/bench_stacking_conv.py``.
CPU_CONV_ACTIVATION = 2 << 20  # 2 MiB
_BYTES = 4  # float32


def default_budget(device):
    """The default memory budget in bytes for ``device``."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(GPU_FREE_FRACTION * free)
    return DEFAULT_CPU_BUDGET


def activation_bytes(module, X, batch_size):
    """Bytes of the activations of one batch of ``batch_size`` rows of ``X``
    (a tensor, or a dict of them) through ``module`` (every submodule's
    output, float32), and of the largest of them."""
    sizes = _output_sizes(module, X)
    inputs = [t[:2].numel() for t in _rows.arrays(X)]
    per_row = (sum(sizes) + sum(inputs)) / 2
    largest = max([*sizes, *inputs]) / 2
    return int(per_row * batch_size * _BYTES), int(largest * batch_size * _BYTES)


def _output_sizes(module, X):
    """The number of values of each submodule's output on ``X``."""
    sizes = []

    def hook(_module, _inputs, output):
        if isinstance(output, torch.Tensor):
            sizes.append(output.numel())

    handles = [m.register_forward_hook(hook) for m in module.modules()]
    training = module.training
    module.eval()  # the same shapes, and a BatchNorm's statistics stay
    try:
        with torch.no_grad():
            _rows.call(module, _rows.take(X, slice(2)))
    finally:
        module.train(training)
        for h in handles:
            h.remove()
    return sizes


def bytes_per_model(n_params, activation, n_steps, width, window, epoch_rows=0):
    """Estimated bytes one model adds to a stack.

    Parameters
    ----------
    n_params : int
        Parameters of one model.
    activation : int
        Bytes of one batch of activations (:func:`activation_bytes`).
    n_steps : int
        The optimizer steps it takes (all epochs).
    width : int
        The widest batch size of the stack.
    window : int
        Steps whose schedule is laid out at once.
    epoch_rows : int, default=0
        Rows of its longest epoch: the order being read (int64).
    """
    # per step its loss (float32) and batch size (int32); per row of each
    # step of the window: row index, its clamped copy, label (int64), valid
    # flag, weight, its normalised copy (float32), and the step-major copies
    # of the row index, label and weight the steps slice
    schedule = n_steps * 8 + window * width * (33 + 20) + 8 * epoch_rows
    return 5 * n_params * _BYTES + 3 * activation + schedule


def result_bytes(n_params, n_steps):
    """Estimated bytes of what one trained model hands back: its parameters,
    two optimizer moments, and per step its loss and batch size (Python
    numbers in lists)."""
    return 3 * n_params * _BYTES + n_steps * (32 + 8)


def held_bytes(*objects):
    """Bytes of the arrays and tensors that ``objects`` hold: through
    modules (their state), dataclasses, lists, tuples and dicts, and
    anything with ``nbytes``; a list of Python floats counts 40 bytes each,
    of ints 8.
    Each object is counted once, however often it is reached."""
    seen, total, stack = set(), 0, list(objects)
    while stack:
        obj = stack.pop()
        if obj is None or id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, torch.nn.Module):
            stack.extend(obj.state_dict(keep_vars=True).values())
        elif isinstance(getattr(obj, "nbytes", None), int):
            total += obj.nbytes
        elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            stack.extend(getattr(obj, f.name) for f in dataclasses.fields(obj))
        elif isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple):
            total += 8 * len(obj)
            if obj and isinstance(obj[0], float):  # a list of losses
                total += 32 * len(obj)
            elif obj and not isinstance(obj[0], int):  # ints: small, shared
                stack.extend(obj)
    return total


def max_models(module, largest, device):
    """The most models of ``module`` one chunk holds whatever the budget
    (None: no such limit): on a CPU, a convolutional network's chunks keep
    their largest activation (``largest`` bytes per model) under
    :data:`CPU_CONV_ACTIVATION`."""
    if torch.device(device).type != "cpu" or not any(
        isinstance(m, nn.modules.conv._ConvNd) for m in module.modules()
    ):
        return None
    return max(2, CPU_CONV_ACTIVATION // max(largest, 1))


def chunk_sizes(n_models, per_model, budget, min_chunks=1, max_per_chunk=None):
    """Split ``n_models`` into chunks of at most ``budget`` bytes and
    ``max_per_chunk`` models, and into ``min_chunks`` at least (when there
    are as many models).

    At least one model per chunk, whatever its size; chunks as equal as
    possible.
    """
    per_chunk = max(1, int(budget // max(per_model, 1)))
    if max_per_chunk is not None:
        per_chunk = max(1, min(per_chunk, max_per_chunk))
    n_chunks = max(-(-n_models // per_chunk), min(min_chunks, n_models))
    base, extra = divmod(n_models, n_chunks)
    return [base + (i < extra) for i in range(n_chunks)]
