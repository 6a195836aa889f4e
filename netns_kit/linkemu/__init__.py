"""The userspace link emulator: netem's delay, jitter, loss, duplication, reordering and
corruption where the kernel has no netem qdisc (many cloud and microVM kernels).

A tagged ``iptables -t mangle -I POSTROUTING -o DEV -j NFQUEUE --queue-num N`` (and
ip6tables) hands what leaves DEV to queue N of its namespace; ``python3 -m
netns_kit.linkemu --queue N ...``, started there, decides each packet's fate as
``sch_netem.c`` does (:mod:`.fate`), holds it, and lets it go when its time comes
(:mod:`.loop`, over :mod:`.nfq`, nfnetlink_queue spoken with the standard library).
:class:`~netns_kit.LinkImpairment` does all this by itself when netem is missing, or
with ``via="userspace"`` (:mod:`.plan` builds the commands, :mod:`.probe` checks that
NFQUEUE works).

**Fail-closed.** The rule has no ``--queue-bypass`` and the queue no FAIL_OPEN: if
the emulator dies while the impairment is in place, the packets leaving DEV are
dropped (the link is down), never sent without their delay, so a test cannot pass
on a link that silently lost its latency. Teardown removes the rules before it stops
the emulator, which releases what it still holds at once; :meth:`LinkImpairment.change`
replaces the emulator under rules that stay (the queue drops in between).

Accuracy: about 0.1-0.3 ms median error, a few ms at p99 on a busy 2-core machine
(it runs SCHED_FIFO where allowed); not a replacement for netem in sub-millisecond or
tail-sensitive tests.
"""
