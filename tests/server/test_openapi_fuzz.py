"""The journalist API against its own document (docs/openapi.json), by Schemathesis: every
request the document allows is generated, sent to the app in process with a valid bearer
token, and each answer checked against the document (no 5xx, status and body declared,
schema-valid requests accepted, invalid ones refused).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode

from .conftest import staff_token


@pytest.fixture
def fuzzed(app_factory: Any) -> tuple[Flask, str]:
    app: Flask = app_factory()
    return app, staff_token(app, "fuzzer", "f")


def _fuzz(operation: Any, token: str, mode: GenerationMode) -> None:
    """Generate requests for one operation (valid ones, or invalid ones that must be refused),
    send each, check each answer."""
    # A reply bundle is a format (SPEC §8) no JSON Schema can generate: random bytes are rightly
    # refused, so only that check is left out there (test_journalist_api.py sends a real one).
    excluded = [positive_data_acceptance] if operation.label == "POST /replies" else []

    @given(case=operation.as_strategy(mode))
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        case.call_and_validate(
            headers={"Authorization": f"Bearer {token}"}, excluded_checks=excluded
        )

    run()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_api_agrees_with_its_document(fuzzed: tuple[Flask, str]) -> None:
    """Each operation of the document, fuzzed (Schemathesis' strategies under hypothesis,
    driven here rather than by its pytest plugin, which does not run under pytest 9)."""
    app, token = fuzzed
    schema = schemathesis.openapi.from_wsgi("/api/journalist/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 7
    for operation in operations:
        for mode in GenerationMode:
            _fuzz(operation, token, mode)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_fuzzer_sees_a_loose_document(
    fuzzed: tuple[Flask, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: the document as it was before (``after`` any string up to 64 characters)
    lets the fuzzer send cursors the API rightly refuses, and the run fails on it."""
    from tipline.server import journalist_api

    loose = journalist_api.document()
    for parameter in loose["paths"]["/sources"]["get"]["parameters"]:
        if parameter["name"] == "after":
            parameter["schema"] = {"type": "string", "maxLength": 64}
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(loose))
    monkeypatch.setattr(journalist_api, "OPENAPI", path)
    app, token = fuzzed
    schema = schemathesis.openapi.from_wsgi("/api/journalist/openapi.json", app)
    (operation,) = [r.ok() for r in schema.get_all_operations() if r.ok().label == "GET /sources"]
    with pytest.raises(FailureGroup, match="Schema-valid request rejected"):
        _fuzz(operation, token, GenerationMode.POSITIVE)
