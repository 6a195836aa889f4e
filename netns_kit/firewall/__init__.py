"""Firewall rules: rule specs, the iptables backend, NAT and port forwards.

The place a second backend plugs in. Imports lifecycle and below; never
:mod:`netns_kit.resources` (resources may use the rule specs here).
"""
