"""Docstring fragments shared by several classes, filled in by one decorator.

As imbalanced-learn's ``Substitution``: a docstring names a fragment as
``{{name}}`` on a line of its own, and :func:`fill_doc` replaces it by the
fragment, indented like the placeholder.
"""

import re

_PLACEHOLDER = re.compile(r"^(?P<indent>[ \t]*)\{\{(?P<name>\w+)\}\}[ \t]*$", re.M)


def fill_doc(**fragments):
    """A decorator that replaces ``{{name}}`` lines of a docstring.

    Parameters
    ----------
    **fragments : str
        ``name -> text``; each line of the text is indented like the
        placeholder it replaces. A placeholder without a fragment is an error.

    Examples
    --------
    >>> @fill_doc(answer="The answer.\\nSecond line.")
    ... def f():
    ...     '''Head.
    ...
    ...         {{answer}}
    ...     '''
    >>> print(f.__doc__)
    Head.
    <BLANKLINE>
            The answer.
            Second line.
    <BLANKLINE>
    """

    def fill(match):
        name = match["name"]
        if name not in fragments:
            raise KeyError(f"no docstring fragment named {name!r}")
        return "\n".join(
            match["indent"] + line if line else line
            for line in fragments[name].splitlines()
        )

    def decorate(obj):
        obj.__doc__ = _PLACEHOLDER.sub(fill, obj.__doc__)
        return obj

    return decorate
