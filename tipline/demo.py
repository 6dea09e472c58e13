"""A demo key set for running the tip line locally: never for real use.

It writes an org key, one journalist key and a signed manifest into the data folder, with the
secret keys unlocked, so a developer can open test submissions.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from .crypto import keys, manifest


def ensure_demo_keys(data_dir: Path) -> keys.OrgPublic:
    """Create the demo keys once; return the org public key."""
    folder = data_dir / "demo-keys"
    org_file = folder / "org.secret.json"
    if org_file.exists():
        org = keys.load_key_file(org_file.read_bytes())
        assert isinstance(org, keys.OrgSecret)
        return org.public
    folder.mkdir(parents=True, exist_ok=True)
    org = keys.OrgSecret.generate()
    journalist = keys.RecipientSecret.generate("Demo journalist")
    today = datetime.datetime.now(datetime.UTC).date()
    signed = manifest.sign_manifest(
        org, 1, [journalist.public], today, today + datetime.timedelta(days=365)
    )
    (folder / "journalist.secret.json").write_bytes(journalist.to_json())
    (folder / "manifest.json").write_bytes(signed)
    (folder / "org.public.json").write_bytes(org.public.to_json())
    org_file.write_bytes(org.to_json())
    return org.public
