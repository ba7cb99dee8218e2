"""The HTTP side: job views, status JSON, ownership and keys, submit responses,
uploads, CSRF, errors.
"""
