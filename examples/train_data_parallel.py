"""
One model trained by several processes
======================================

The same script trains in one process (``python train_data_parallel.py``) or
data-parallel over several, started by a launcher::

    torchrun --standalone --nproc_per_node=2 examples/train_data_parallel.py

Under the launcher every process runs this whole script: each loads the full
data set, :meth:`~skweighted.WeightedNeuralNetClassifier.fit` notices the
process group (``data_parallel='auto'``), resolves the class weights from the
full ``y`` and trains one model through ``DistributedDataParallel``, each
process on its share of every batch, the loss normalised by the sum of the
weights of the whole global batch. Afterwards every process holds the same
ordinary model; rank 0 alone prints the training log, reports and saves.

This script is not run by the documentation build (it is meant for a
launcher); the test suite runs it with two CPU processes. See
:doc:`/user_guide/distributed`.
"""

import pickle
import sys

import torch.distributed as dist
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split

from skweighted import WeightedNeuralNetClassifier, load_imbalanced

# %%
# Every process loads the whole data set: ``fit`` picks each one's rows.
X, y = load_imbalanced("digits_images", return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, stratify=y, test_size=0.25, random_state=0
)

# %%
# ``batch_size`` is per process: with N processes each optimizer step sees
# ``N * batch_size`` rows. ``accumulate_grad_batches=2`` would double that
# again without more memory per process.
clf = WeightedNeuralNetClassifier(
    class_weight="balanced",
    batch_size=32,
    max_epochs=4,
    lr=0.003,
    random_state=0,
    verbose=1,
)
clf.fit(X_train, y_train)

# %%
# ``predict`` works in every process (each on the rows it is given). Rank 0
# reports and saves the model, which loads anywhere, with no process group.
rank = dist.get_rank() if dist.is_initialized() else 0
world_size = dist.get_world_size() if dist.is_initialized() else 1
proba = clf.predict_proba(X_test)
if rank == 0:
    score = balanced_accuracy_score(y_test, clf.predict(X_test))
    print(f"trained by {world_size} process(es)")
    print(f"class weights: {clf.class_weight_.round(2).tolist()}")
    print(f"balanced accuracy on the test set: {score:.3f}")
    if len(sys.argv) > 1:
        with open(sys.argv[1], "wb") as f:
            pickle.dump(clf, f)
if dist.is_initialized():
    dist.destroy_process_group()
