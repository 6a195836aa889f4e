"""The one door to processes: the Executor protocol and the executors behind it.

Local (:mod:`~netns_kit.executors.local`), sandbox (:mod:`~netns_kit.executors.sandbox`,
with its :mod:`~netns_kit.executors.holder`), dry-run (:mod:`~netns_kit.executors.recorder`),
and how processes are started (:mod:`~netns_kit.executors.spawn`) and supervised
(:mod:`~netns_kit.executors.process`). Imports batching (to batch) and the values.
"""
