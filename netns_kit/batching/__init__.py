"""How many commands become few processes: ``ip -batch``, ``iptables-restore --noflush``.

Pure planning, no process is started here: which commands may share a process
(the schedule), the effects a command has on those after it, the batch lines, and
how a batch's output tells what took effect. The executors that batch use it.
Imports the values only.
"""
