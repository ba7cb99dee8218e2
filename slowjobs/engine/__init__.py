"""Running jobs: the executor (pool or delegate), the runner of one job, the
task's context, process mode.
"""
