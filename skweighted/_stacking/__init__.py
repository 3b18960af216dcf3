"""The stacking engine: M models of one architecture trained together.

See :mod:`._engine` for the entry point :func:`train_stack`.
"""

from ._engine import StackJob, StackResult, plan_chunks, stack_bytes, train_stack

__all__ = ["StackJob", "StackResult", "plan_chunks", "stack_bytes", "train_stack"]
