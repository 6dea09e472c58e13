"""The offline desk: a vault of envelopes and keys, import, triage, replies and key rotation.

It runs on an air-gapped machine. Nothing here imports a socket or HTTP library or anything from
``tipline.server`` (tests/test_architecture.py checks the import graph).
"""
