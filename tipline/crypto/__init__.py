"""Tipline's crypto core: envelope v1, keys, signed key manifests, codenames, padding.

Everything here imports only the standard library and ``nacl``; it touches no files, no
environment and no network. ``docs/SPEC.md`` is the binding description of every format.
"""
