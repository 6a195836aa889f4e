"""Many resources as one unit: order, whole-topology checks, TOML files, the picture, scenarios.

Imports resources and below; never ops.
"""
