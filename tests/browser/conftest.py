"""Browser fixtures shared by every test under tests/browser: one Playwright and one Debian
Chromium per session (two sync Playwright instances cannot share a thread), and the source
interface served by gunicorn (tests/browser/source_fixtures.py).
"""

from __future__ import annotations

from .source_fixtures import chromium, playwright, source_server

__all__ = ["chromium", "playwright", "source_server"]
