"""The durable job: its row's writes (one writer thread, group commit), its
JSON values, its files, its cancel.
"""
