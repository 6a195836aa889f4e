"""The resources that plan commands and never run them: namespaces, links, routes,
addresses, per-namespace files, impairments, partitions.

Imports firewall, lifecycle and below.
"""
