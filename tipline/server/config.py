"""Configuration, read in one place: defaults, then ``TIPLINE_*`` environment variables, then
the dict a caller (a test) passes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..crypto.encoding import b64d
from ..crypto.errors import TiplineError


class ConfigError(TiplineError):
    """the tip line's configuration is not valid"""


DEFAULTS: dict[str, Any] = {
    "DATA_DIR": "instance",
    "ORG_PUBLIC_KEY": None,  # base64 of the org's Ed25519 public key, set at install
}


def load_config(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Merge defaults, the environment and ``overrides``; check what the app needs."""
    config = dict(DEFAULTS)
    for key in DEFAULTS:
        value = os.environ.get(f"TIPLINE_{key}")
        if value is not None:
            config[key] = value
    config.update(overrides or {})
    config["DATA_DIR"] = str(Path(config["DATA_DIR"]).resolve())
    if config["ORG_PUBLIC_KEY"] is None:
        raise ConfigError("TIPLINE_ORG_PUBLIC_KEY is not set (the org key made on the desk)")
    config["ORG_PUBLIC_KEY_BYTES"] = b64d(
        config["ORG_PUBLIC_KEY"], 32, ConfigError, "TIPLINE_ORG_PUBLIC_KEY"
    )
    return config
