"""What every resource shares: the resource base, the undo journal, the write-ahead
ledger, teardown, and shared switches (sysctls) with their claims.

Imports batching, executors and values; never a concrete resource.
"""
