"""Sphinx configuration for netns_kit's documentation (built with -W in CI)."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

import netns_kit

project = "netns_kit"
author = "the netns_kit developers"
release = version = netns_kit.__version__
extensions = ["sphinx.ext.autodoc", "sphinx.ext.intersphinx"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
intersphinx_mapping: dict[str, tuple[str, None]] = {}
nitpicky = False
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_title = f"netns_kit {release}"
suppress_warnings = ["autodoc.import_object"]
