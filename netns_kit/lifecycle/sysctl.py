"""Sysctls a resource turns on and restores: read the prior value when planning, undo to it.

The plan reads the value first (a query: a dry-run answers as a fresh kernel
would) and changes it only when it differs; the undo restores exactly that
prior value, so ``ip_forward`` or ``route_localnet`` come back as they were.

On a real run several owners (processes, or topologies of one process) may
rely on the same switch of the same "host" at once: two NAT rules both need
``ip_forward=1``. Whoever leaves first must not switch it off under the
others. So each one that relies on it files a *claim* (a file under the
executor's ledger directory, ``sysctl/<netns or -host->/<key>/claim.OWNER.N``,
holding the value it relies on) next to ``prior``, the value found before the
first claim; only the last claim to go restores that value, and only while the
switch still holds the value set. Claims of processes that are gone do not
count (``netns_kit.cleanup()`` restores for them). Every look at and change of
the claims happens under ONE lock: ``flock`` on the ledger directory itself,
which no one removes, so that the claim directories can go with their last
claim (race-free: a claimer makes them under the same lock). A printed script
takes the same lock and keeps the same files (:mod:`netns_kit.executors.recorder`).

One process files one claim per sysctl and owner, however many of its
resources rely on it (W(200) has 400 port forwards and NAT rules relying on
``ip_forward``): the others are counted in memory, without a lock or a look
at the directory, and the file goes with the last of them.

The forwarding switches (:data:`SWITCHES`) are written at once, under the lock
---------------------------------------------------------------------------------

``net.ipv4.ip_forward`` and ``net.ipv6.conf.all.forwarding`` are shared by the
whole "host", and the kernel does not take concurrent writes of them well: it
stores the new value first and copies it to ``conf/default`` and to every
interface afterwards, only when the writer saw a change. A restore to 0 racing
a set to 1 can leave ``all`` at 1 while ``default`` and every interface are 0:
nothing is forwarded, ``ip_forward`` still reads 1, and later writes of 1 change
nothing. So deciding a write of a switch and making it are ONE step under the
lock, within a process (threads open the lock separately) and across
processes; the alternative, a planned command run later by the batch
scheduler, left a window between the decision and the write in which another
owner decided on a value that was about to change. :func:`plan_set` therefore
runs the write itself, through the executor (the same :class:`Command` a
dry-run records and prints), and returns nothing to run later; the claim, filed
before the write under the lock, is its write-ahead record (``netns_kit.cleanup``
reads it when the process dies). The release likewise restores under the lock
(:func:`release`). After each write, ``all``, ``default`` and every interface
are read back (``ip -j netconf show``, one process): any that disagree are
written again, and a :class:`~netns_kit.errors.NetnsKitError` says so if that
does not repair them. A switch that reads the value already but whose
``default`` disagrees (left so by such a race elsewhere) is repaired the same
way, as netns_kit relies on it. :func:`forwarding_problem` is ``doctor``'s look.

Per-interface switches (``route_localnet`` of a bridge the same plan creates)
cannot be written at plan time; they stay planned commands, claimed the same way.

Planning an undo writes nothing
-------------------------------

``Resource.delete()`` of an object its value did not create plans the resource
to find what to undo. That plan runs under :func:`planning_undo`, where
:func:`plan_set` files no claim, writes nothing and returns nothing: a
resource that filed no claim has nothing of a shared switch to restore (the
last claim out restores it; ``netns_kit.cleanup()`` does for a process gone).

Damaged claim files
-------------------

Files in the claims directory may be damaged (a crash mid-write, a full disk,
another program, another version of netns_kit). Every reader here survives an
empty file, garbage, bytes that are not text, a directory where a file should
be, and never crashes on them:

* a ``prior`` is written back only when it is a value of its switch
  (:func:`valid_value`: ``0`` or ``1`` for the forwarding switches and
  ``route_localnet``; else one to eight ASCII integers of at most 20 digits,
  as ``sysctl -n`` prints them). Any other ``prior`` is never written back: the
  switch is left as it is, a warning is logged, and ``cleanup()`` lists it in
  its report's ``kept`` with what to do;
* a claim counts only when its name parses (``claim.OWNER.PID-N``,
  ``claim.OWNER.script``, :func:`claim_owner`) and it is a file; any other
  ``claim.*`` entry is not counted as a live claim, and never deleted (it is not
  provably ours);
* a claim's content (the value it relies on) that is not a value is ignored:
  the ``prior`` alone decides;
* a key or place directory whose name cannot be a sysctl key or a namespace
  name is left alone.

The modules
-----------

This module gathers the names the rest of the package uses; the code lives in
:mod:`netns_kit.sysctl_keys` (the keys, their places, the values that may be
written back), :mod:`~netns_kit.lifecycle.sysctl_files` (the lock, a claim's
name, reading a value), :mod:`~netns_kit.lifecycle.sysctl_claims` (the claims
of one sysctl), :mod:`~netns_kit.lifecycle.sysctl_switch` (reading, writing,
the read-back through ``ip -j netconf``, doctor's look),
:mod:`~netns_kit.lifecycle.sysctl_plan` (planning and releasing, planning an
undo) and :mod:`~netns_kit.lifecycle.sysctl_leftovers` (the claims of owners
that are gone).
"""

from __future__ import annotations

from netns_kit.lifecycle.sysctl_claims import Claims
from netns_kit.lifecycle.sysctl_files import claim_owner, locked, owner_of, read_value
from netns_kit.lifecycle.sysctl_leftovers import Leftover, leftovers
from netns_kit.lifecycle.sysctl_plan import plan_set, planning_undo, release
from netns_kit.lifecycle.sysctl_switch import disagreeing, forwarding_problem, netconf, read, settle, write
from netns_kit.sysctl_keys import (
    CLAIMS_DIR,
    HOST,
    IPV4_FORWARD,
    IPV6_FORWARD,
    SWITCHES,
    forwarding_key,
    interface_key,
    valid_value,
)

__all__ = [
    "CLAIMS_DIR",
    "HOST",
    "IPV4_FORWARD",
    "IPV6_FORWARD",
    "SWITCHES",
    "Claims",
    "Leftover",
    "claim_owner",
    "disagreeing",
    "forwarding_key",
    "forwarding_problem",
    "interface_key",
    "leftovers",
    "locked",
    "netconf",
    "owner_of",
    "plan_set",
    "planning_undo",
    "read",
    "read_value",
    "release",
    "settle",
    "valid_value",
    "write",
]
