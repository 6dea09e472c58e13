"""The source interface's routes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tipline.crypto import keys
from tipline.crypto.encoding import b64e
from tipline.server import create_app
from tipline.server.config import ConfigError


def test_landing_shows_fingerprint(tmp_path: Path) -> None:
    org = keys.OrgSecret.generate().public
    app = create_app({"DATA_DIR": str(tmp_path), "ORG_PUBLIC_KEY": b64e(org.public_key)})
    page = app.test_client().get("/")
    assert page.status_code == 200
    assert org.fingerprint in page.text


@pytest.mark.parametrize("value, message", [(None, "not set"), ("AAAA", "32 bytes")])
def test_org_key_is_required(tmp_path: Path, value: str | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_app({"DATA_DIR": str(tmp_path), "ORG_PUBLIC_KEY": value})
