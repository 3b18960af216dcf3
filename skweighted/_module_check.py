"""The check a new net's module gets before training: run on two samples of
the fit's input, it must accept them and return one output per class (or
the criterion's number), and token ids must fit its embeddings."""

import torch
from skorch.utils import to_tensor

from . import _inputs
from ._embedding import IdOutOfRange, check_ids, watching_embeddings


def _probe(net, X):
    """The first two samples of validated ``X``, batched as training batches are."""
    if _inputs.is_dataset(X):
        items = _inputs.LabelledDataset(X)
        collate = net.get_params_for("iterator_train").get("collate_fn")
        collate = collate or torch.utils.data.default_collate
        return collate([items[i] for i in range(min(2, len(items)))])[0]
    # torch.tensor copies two rows: X may be read-only
    if isinstance(X, dict):
        return {k: torch.tensor(v[:2]) for k, v in X.items()}
    return torch.tensor(X[:2])


def _describe(batch):
    if isinstance(batch, dict):
        return ", ".join(f"{k}: {_describe(v)}" for k, v in batch.items())
    if isinstance(batch, torch.Tensor):
        return f"shape {tuple(batch.shape)}, dtype {batch.dtype}"
    return type(batch).__name__


def _integer_hint(batch):
    tensors = batch.values() if isinstance(batch, dict) else [batch]
    if any(isinstance(t, torch.Tensor) and not t.is_floating_point() for t in tensors):
        return (
            " Integer and boolean X keep their dtype (for nn.Embedding and uint8 "
            "images); convert X to float32 if the module expects floats."
        )
    return ""


def check_module_output(net, X, n_outputs, n_classes):
    """Run the initialised module on two samples and check its output width."""
    module = net.module_
    was_training = module.training
    module.eval()
    batch = to_tensor(_probe(net, X), device=net.device)
    try:
        with torch.no_grad(), watching_embeddings(module, batch) as embeddings:
            out = net.infer(batch)
    except IdOutOfRange:
        raise
    except Exception as exc:
        raise RuntimeError(
            f"The module's forward pass failed on the input ({_describe(batch)}): "
            f"{type(exc).__name__}: {exc}.{_integer_hint(batch)}"
        ) from exc
    finally:
        module.train(was_training)
    if not _inputs.is_dataset(X):
        check_ids(X, embeddings)  # every row, not only the probe's
    out = out[0] if isinstance(out, tuple | list) else out
    width = out.shape[-1] if out.ndim > 1 else 1
    if out.ndim != 2 or width != n_outputs:
        raise ValueError(
            f"The module returns {width} output(s) per sample (output shape "
            f"{tuple(out.shape)}), but there are {n_classes} classes and the "
            f"criterion needs {n_outputs} output(s) per sample. Size the "
            "module's last layer accordingly."
        )
