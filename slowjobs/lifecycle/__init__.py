"""A process's life: start, heartbeat, drain, scheduling, and finding and
adopting the jobs of dead processes.
"""
