"""Sphinx configuration: ``make -C docs html`` builds the site."""

from pathlib import Path

import torch

import skweighted

project = "skweighted"
author = "skweighted developers"
copyright = "skweighted developers"
release = skweighted.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
templates_path = ["_templates"]

# -- API reference ---------------------------------------------------------
autosummary_generate = True
autodoc_default_options = {
    "members": True,
    "inherited-members": False,
    # scikit-learn's generated metadata-routing setters; the user guide
    # explains them (docs/user_guide/pipelines.rst).
    "exclude-members": "set_fit_request, set_partial_fit_request, set_score_request",
}
# A method without its own docstring (``forward``) stays out of the page
# instead of showing torch's generic text.
autodoc_inherit_docstrings = False
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
default_role = "literal"

# Names outside this project that the docstrings mention in :class: / :func:
# roles. The build has no network access, so there is no intersphinx; these
# are rendered as code, everything else must resolve (nitpicky mode).
nitpick_ignore_regex = [
    ("py:.*", r"(torch|sklearn|skorch|numpy|np|pandas|imblearn|dask)(\..*)?"),
    # private base classes shown by :show-inheritance:
    ("py:class", r"skweighted\.(.*\.)?_\w+"),
]

# -- Gallery -----------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "backreferences_dir": "gen_modules/backreferences",
    "doc_module": ("skweighted",),
    "reference_url": {"skweighted": None},
    "image_scrapers": ("matplotlib",),
    "remove_config_comments": True,
    "show_memory": False,
    "plot_gallery": "True",
}

# -- HTML --------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skweighted {release}"
html_static_path = ["_static"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}

# MyST: the Markdown pages (benchmarks, compare, errors) may use $math$ and
# ::: fences.
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

_here = Path(__file__).resolve().parent

# The gallery trains small networks on small data, where one thread is
# faster than several competing for the build machine's cores.
torch.set_num_threads(1)


def _check_gallery_figures(app, exception):
    """Every gallery example must have produced at least one figure."""
    plot = app.config.sphinx_gallery_conf.get("plot_gallery", True)
    if exception is not None or str(plot).lower() in {"0", "false", "no"}:
        return
    images = _here / "auto_examples" / "images"
    missing = [
        p.stem
        for p in sorted((_here.parent / "examples").glob("plot_*.py"))
        if not any(images.glob(f"sphx_glr_{p.stem}_*.png"))
    ]
    if missing:
        raise RuntimeError(f"Gallery examples produced no figure: {missing}")


def setup(app):
    app.connect("build-finished", _check_gallery_figures)
