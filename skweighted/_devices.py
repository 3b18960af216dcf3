"""Devices and torch's global generator: a clear error for a device this
machine lacks, and a block that seeds the global generator for one fit."""

import contextlib
import threading

import torch

#: Guards torch's process-wide generator while a fit seeds it (module
#: initialisation, and the epochs of modules with dropout).
_GLOBAL_RNG_LOCK = threading.RLock()


def resolve_device(device):
    """Return a ``torch.device`` for ``device`` or raise a clear ValueError."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(
            f"device={device!r} is not a valid torch device; use 'cpu', 'cuda', "
            f"'cuda:N' or 'mps' ({exc})."
        ) from None
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": getattr(torch.backends, "mps", None) is not None
        and torch.backends.mps.is_available(),
    }
    if not available.get(dev.type, True):
        raise ValueError(
            f"device={device!r} was requested but {dev.type.upper()} is not "
            f"available on this machine (torch.{dev.type} reports no device); "
            "use device='cpu'."
        )
    if dev.type == "cuda" and dev.index is not None:
        if dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r}: this machine has only "
                f"{torch.cuda.device_count()} CUDA device(s)."
            )
    return dev


@contextlib.contextmanager
def seeded(seed, device):
    """Seed torch's global generator inside the block, holding the process-wide
    lock, and restore the caller's generator state afterwards."""
    if seed is None:
        yield
        return
    devices = [device.index or 0] if device.type == "cuda" else []
    with _GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=devices):
        if devices:
            torch.manual_seed(seed)
        else:  # torch.manual_seed also queues a (costly) lazy seed of CUDA
            torch.default_generator.manual_seed(seed)
        yield
