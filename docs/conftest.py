"""pytest runs the ``>>>`` examples of the hand-written pages (``*.rst``).

Only the source pages: the build outputs and the Sphinx configuration are
not test modules.
"""

collect_ignore = ["conf.py"]
collect_ignore_glob = ["_build/*", "auto_examples/*", "gen_modules/*", "generated/*"]
