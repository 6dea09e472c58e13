"""Nothing that identifies a visitor is logged or stored: address, browser, referrer, time."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import inspect, select, text

from tipline.server import db
from tipline.server.models import Source, Submission

from .conftest import csrf_token

IP, AGENT, REFERER = "198.51.100.231", "PrivacyProbe/3.1", "http://probe-referer.example/x"


def test_distinctive_headers_go_nowhere(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = app.test_client()
    headers = {"X-Forwarded-For": IP, "User-Agent": AGENT, "Referer": REFERER}
    client.environ_base.update(REMOTE_ADDR=IP, HTTP_USER_AGENT=AGENT)
    token = csrf_token(client)
    page = client.post("/submit", data={"csrf_token": token, "message": "hello"}, headers=headers)
    assert page.status_code == 200
    client.get("/no/such/page", headers=headers)
    client.post("/login", data={"csrf_token": token, "codename": "x"}, headers=headers)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for value in (IP, AGENT, REFERER):
        assert value not in logged
    with app.app_context():
        session = db.session()
        for table in inspect(db.engine_of(app)).get_table_names():
            for row in session.execute(text(f"SELECT * FROM {table}")):
                dump = repr(tuple(row))
                for value in (IP, AGENT, REFERER):
                    assert value not in dump, table
        source = session.scalars(select(Source)).one()
        submission = session.scalars(select(Submission)).one()
        # Dates, not times: a row says which day, never which minute.
        assert not hasattr(source.created, "hour") and not hasattr(submission.received, "hour")
    for path in Path(app.config["DATA_DIR"]).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert IP.encode() not in data and AGENT.encode() not in data


def test_proxy_headers_are_not_believed(app: Flask) -> None:
    with app.test_request_context(
        headers={"X-Forwarded-For": IP}, environ_base={"REMOTE_ADDR": "127.0.0.1"}
    ):
        from flask import request

        assert request.remote_addr == "127.0.0.1"  # no ProxyFix: nothing rewrites it
