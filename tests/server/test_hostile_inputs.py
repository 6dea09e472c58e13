"""Lower findings of issue 10 (item 10): SQL parameters never logged, deeply nested JSON a 400,
redirects never absolute to a forged Host, and a 405 that says what is allowed.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from flask import Flask
from flask.json.provider import DefaultJSONProvider
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from tipline.server import db, security

from .conftest import csrf_token

MARKER = "designation-7f3a9c"


@pytest.mark.parametrize("hidden", [True, False], ids=["app-engine", "control-plain-engine"])
def test_a_failing_insert_logs_no_parameters(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, hidden: bool
) -> None:
    """A duplicate INSERT (as the registration race made) logged the way the app logs an
    unexpected error: the app's engine leaves the bound values out; a plain engine (the
    control) puts them in the log, so the check would see them."""
    url = f"sqlite:///{tmp_path / 't.db'}"
    engine = db.make_engine(url) if hidden else create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id TEXT PRIMARY KEY, designation TEXT)"))
        conn.execute(text("INSERT INTO t VALUES ('a', :d)"), {"d": MARKER})
    with pytest.raises(IntegrityError) as caught, engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES ('a', :d)"), {"d": MARKER})
    engine.dispose()
    with caplog.at_level(logging.ERROR):
        logging.getLogger("tipline.server.errors").error("unexpected error", exc_info=caught.value)
    assert "INSERT INTO t" in caplog.text
    assert (MARKER in caplog.text) is not hidden


def test_deeply_nested_json_is_a_400(app: Flask) -> None:
    """5,000 nested arrays (under the 16 KiB JSON limit) are refused as invalid JSON; the
    control, Flask's own JSON provider, turns the same body into a 500 (RecursionError)."""
    body = "[" * 5000 + "]" * 5000
    for provider, expected in ((None, 400), (DefaultJSONProvider(app), 500)):
        if provider is not None:
            app.json = provider
            app.config["PROPAGATE_EXCEPTIONS"] = False
        client = app.test_client()
        token = csrf_token(client, "/submit")
        response = client.post(
            "/api/source/login", data=body, content_type="application/json",
            headers={"X-CSRFToken": token},
        )  # fmt: skip
        assert response.status_code == expected
    app.json = security.BoundedJSON(app)


def test_redirects_never_name_a_forged_host(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """Werkzeug's slash redirect (/admin to /admin/) is a path, whatever Host says; the
    control without the rewrite shows the redirect would be absolute to evil.example."""
    client = app.test_client()
    response = client.get("/admin", headers={"Host": "evil.example"})
    assert response.status_code == 308 and response.headers["Location"] == "/admin/"
    monkeypatch.setattr(security, "_relative_location", lambda _response: None)
    response = client.get("/admin", headers={"Host": "evil.example"})
    assert "evil.example" in response.headers["Location"]


def test_trace_is_a_405_with_allow(app: Flask) -> None:
    """TRACE (and any method a route lacks) is refused with the app's page and an Allow
    header naming what the route takes."""
    response = app.test_client().open("/", method="TRACE")
    assert response.status_code == 405
    allowed = {m.strip() for m in response.headers.get("Allow", "").split(",")}
    assert "GET" in allowed and "TRACE" not in allowed
    assert re.search(r"<html", response.text)
