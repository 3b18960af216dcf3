"""Turn a stacked model's result into an ordinary fitted net.

The trained weights and buffers (a BatchNorm's running statistics) go into
``net.module_``, the optimizer's state into
``net.optimizer_`` (so a warm start continues as after a separate fit), and
the history is recorded through skorch's own epoch events, so its callbacks
(the epoch counter, the epoch ``train_loss`` and its ``_best`` flag, the
timer) fill it in exactly as they do in a separate fit.
"""

import warnings

import torch

from ._lr import batch_listeners


def write_back(net, result):
    """Load ``result`` (a :class:`StackResult`) into the prepared ``net``."""
    device = torch.device(net.device)
    params = list(net.module_.named_parameters())
    with torch.no_grad():
        for name, p in [*params, *net.module_.named_buffers()]:
            p.copy_(result.state_dict[name].to(device))  # running statistics too
    for (_, p), state in zip(params, result.optimizer_state):
        state = {k: v for k, v in state.items() if v is not None}
        if state:
            net.optimizer_.state[p] = state
    _record_history(net, result)
    return net


def _record_history(net, result):
    listeners = batch_listeners(net)
    with warnings.catch_warnings():
        # an LRScheduler steps the net's optimizer, which took no step here
        warnings.filterwarnings(
            "ignore", "Detected call of `lr_scheduler.step", UserWarning
        )
        _replay(net, result, listeners)


def _replay(net, result, listeners):
    valid = result.valid_losses
    net.notify("on_train_begin", X=None, y=None)
    stopper = getattr(net, "stopper_", None)
    if stopper and result.valid_scores is not None:  # the stack scored them
        stopper.replay(result.valid_scores)
    for e, (losses, sizes, duration) in enumerate(
        zip(result.batch_losses, result.batch_sizes, result.epoch_durations)
    ):
        net.notify("on_epoch_begin", dataset_train=None, dataset_valid=None)
        # the rows new_batch() and record_batch() would add, without
        # History's indexing for every value
        batches = list.__getitem__(net.history, -1)["batches"]
        rows = [
            {"train_loss": loss, "train_batch_size": size}
            for loss, size in zip(losses, sizes)
        ]
        if not listeners:
            batches.extend(rows)
        for row in rows if listeners else ():  # a schedule stepped per batch
            batches.append(row)
            for cb in listeners:
                cb.on_batch_end(net, batch=None, training=True)
        net.history.record("train_batch_count", len(losses))
        if valid is not None:  # the epoch's validation loss, as one batch
            batches.append({"valid_loss": valid[e], "valid_batch_size": result.n_valid})
            net.history.record("valid_batch_count", 1)
        try:
            net.notify("on_epoch_end", dataset_train=None, dataset_valid=None)
        except KeyboardInterrupt:  # the net's stopper stops where the stack did
            pass
        net.history.record("dur", duration)
    net.notify("on_train_end", X=None, y=None)
