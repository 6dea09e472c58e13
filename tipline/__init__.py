"""Tipline: a secure anonymous tip line for newsrooms.

The folders say the architecture: ``crypto`` (pure formats, shared by every part), ``server``
(the Flask front end, never opens an envelope) and ``desk`` (the offline tool that does).
"""
