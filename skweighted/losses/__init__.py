"""Imbalance-aware criteria.

Every criterion here is a ``torch.nn.Module`` that

- holds its class weights as a registered buffer ``weight`` (so moving the
  criterion to a device moves the weights, the way
  :class:`torch.nn.CrossEntropyLoss` does);
- takes ``forward(input, target, sample_weight=None)``, where ``input`` are
  the module's raw outputs (logits), ``target`` the encoded labels
  ``0..K-1`` and ``sample_weight`` optional per-sample weights;
- weighs sample :math:`i` by :math:`v_i = w_{y_i} s_i` (class weight times
  sample weight) and reduces a batch in one shared way, chosen by
  ``normalization``:

  * ``"weighted_mean"`` (default, PyTorch's convention):
    :math:`\\sum_i v_i \\ell_i / \\sum_i v_i`. **Multiplying every class
    weight by the same constant leaves this loss, its gradients and so the
    whole training run unchanged**: ``'balanced'``, ``'inverse'`` and
    normalised inverse frequency train identically. Only the *ratios*
    between class weights matter.
  * ``"mean"``: :math:`\\sum_i v_i \\ell_i / N`, the tutorials'
    ``torch.mean(weights * loss)``. Here the scale of the weights scales the
    loss and so, with plain SGD, the effective learning rate;
- computes every log-probability from logits (``log_softmax``,
  ``logsumexp``, ``softplus``), never ``log(p + eps)``;
- knows how to turn logits into class probabilities (``predict_proba``),
  and, when its optimal decision is not the most probable class, how to
  decide (``decision``), which
  :meth:`~skweighted.WeightedNeuralNetClassifier.predict` then uses.

A single-logit binary criterion (``n_outputs(2) == 1``) makes the default
network produce one output; ``predict_proba`` still returns two columns.

For a multi-label ``y`` (a 0/1 indicator matrix),
:class:`MultiLabelBCELoss` takes the indicator matrix as ``target``, holds
per-label weights of shape ``(n_labels, 2)`` and reduces with PyTorch's
``BCEWithLogitsLoss`` convention (``"mean"``) by default.
"""

from ._cost import RealWorldWeightCrossEntropyLoss
from ._cross_entropy import BinaryCrossEntropyLoss, WeightedCrossEntropyLoss
from ._focal import BinaryFocalLoss, FocalLoss
from ._logit_adjusted import LogitAdjustedLoss
from ._multilabel import MultiLabelBCELoss

__all__ = [
    "BinaryCrossEntropyLoss",
    "BinaryFocalLoss",
    "FocalLoss",
    "LogitAdjustedLoss",
    "MultiLabelBCELoss",
    "RealWorldWeightCrossEntropyLoss",
    "WeightedCrossEntropyLoss",
]
