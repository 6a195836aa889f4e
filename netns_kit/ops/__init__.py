"""Looking at a machine: inventory, crash cleanup, normalized state, the leak check, doctor.

Imports resources and below; never the topology.
"""
