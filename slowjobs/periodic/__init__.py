"""Periodic jobs with no beat process and no leader.

Schedules are declared in ``SLOWJOBS_PERIODIC`` (``declared``); every
process that looks after jobs keeps the clock (``clock``): at each slot it
enqueues the slot's job, and a unique key per (schedule, slot) in the
database makes every other process's attempt a no-op.  A dead process
misses nothing while another lives; after downtime, each schedule's
``missed`` policy says what to do with the slots nobody was there for.
"""
