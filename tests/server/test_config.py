"""Configuration from defaults, a TOML file, the environment and a dict, in that order."""

from __future__ import annotations

from pathlib import Path

import pytest

from tipline.crypto import keys
from tipline.crypto.encoding import b64e
from tipline.server.config import ConfigError, load_config

ORG = b64e(keys.OrgSecret.generate().public.public_key)


def test_defaults(tmp_path: Path) -> None:
    config = load_config({"DATA_DIR": str(tmp_path), "ORG_PUBLIC_KEY": ORG})
    assert config["MAX_SUBMISSION_SIZE"] == 2 << 30
    assert config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'tipline.db'}"
    assert config["AUTO_MIGRATE"] is True
    # The secret key is made once and shared by every worker.
    assert (
        config["SECRET_KEY"]
        == load_config({"DATA_DIR": str(tmp_path), "ORG_PUBLIC_KEY": ORG})["SECRET_KEY"]
    )
    assert (tmp_path / "secret-key").stat().st_mode & 0o077 == 0


def test_file_then_environment_then_dict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "tipline.toml"
    file.write_text(f'ORG_PUBLIC_KEY = "{ORG}"\nMAX_CHUNK_SIZE = 100000\nMIN_FREE_BYTES = 5\n')
    monkeypatch.setenv("TIPLINE_CONFIG_FILE", str(file))
    monkeypatch.setenv("TIPLINE_MIN_FREE_BYTES", "7")
    monkeypatch.setenv("TIPLINE_HTTPS", "yes")
    config = load_config({"DATA_DIR": str(tmp_path), "SESSION_MINUTES": 3})
    assert config["MAX_CHUNK_SIZE"] == 100000
    assert config["MIN_FREE_BYTES"] == 7 and config["HTTPS"] is True
    assert config["SESSION_MINUTES"] == 3


@pytest.mark.parametrize(
    "env, message",
    [
        ({"TIPLINE_MAX_CHUNK_SIZE": "lots"}, "whole number"),
        ({"TIPLINE_HTTPS": "maybe"}, "true or false"),
        ({"TIPLINE_MAX_CHUNK_SIZE": "100"}, "at least 65536"),
        ({"TIPLINE_MIN_FREE_BYTES": "-1"}, "0 or more"),
    ],
)
def test_bad_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=message):
        load_config({"DATA_DIR": str(tmp_path), "ORG_PUBLIC_KEY": ORG})


def test_unknown_setting_in_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "tipline.toml"
    file.write_text("MAX_SUBMISION_SIZE = 1\n")
    monkeypatch.setenv("TIPLINE_CONFIG_FILE", str(file))
    with pytest.raises(ConfigError, match="MAX_SUBMISION_SIZE"):
        load_config({"DATA_DIR": str(tmp_path), "ORG_PUBLIC_KEY": ORG})
