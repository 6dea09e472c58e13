"""The real server (``tipline-server serve``) on the S3 store, killed with SIGKILL between a
finish's completion of the multipart upload and its commit (the fault point ``finish-moved``,
tipline/server/faults.py): nothing is lost, nothing half-visible, the page's retried finish
stores the tip on a fresh server, and the sweep leaves nothing of the upload behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tipline.server.s3store import S3BlobStore

from ..deploy.conftest import configured_site
from ..s3_server import Seaweed
from .test_faults import Client, Site, killed, serving, upload_whole

pytestmark = pytest.mark.slow


@pytest.fixture
def s3_site(tmp_path: Path, seaweed: Seaweed) -> tuple[Site, S3BlobStore]:
    env, _, journalist = configured_site(tmp_path, "Fault journalist")
    site = Site(tmp_path, env, journalist.public.public_key)
    settings = seaweed.settings(seaweed.new_bucket())
    config = Path(site.env["TIPLINE_CONFIG_FILE"])
    config.write_text(config.read_text() + "".join(f'{k} = "{v}"\n' for k, v in settings.items()))
    store = S3BlobStore(
        site.base / "probe",
        0,
        endpoint=settings["S3_ENDPOINT"],
        bucket=settings["S3_BUCKET"],
        access_key=settings["S3_ACCESS_KEY"],
        secret_key=settings["S3_SECRET_KEY"],
    )
    return site, store


def _open_uploads(store: S3BlobStore) -> list[str]:
    found = store.s3.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])
    return [u["Key"] for u in found]


def test_kill_between_completion_and_commit(s3_site: tuple[Site, S3BlobStore]) -> None:
    """Control: before the finish the multipart upload is open and nothing is at the blob's
    key; the kill happened (no answer), and it left the completed object with no row."""
    site, store = s3_site
    with serving(site, "finish-moved") as server:
        client = Client(server)
        client.start()
        upload_id, envelope = upload_whole(client, site)
        assert _open_uploads(store) == [f"pending/submissions/{upload_id}"]
        assert not store.exists("submissions", upload_id)
        assert killed(lambda: client.call("POST", f"/api/source/uploads/{upload_id}/finish"))
        assert site.rows("submissions") == [] and site.rows("sources") == []
        assert site.rows("uploads") == [upload_id]
        assert _open_uploads(store) == []
        assert store.exists("submissions", upload_id)  # completed, not committed
    with serving(site, None) as server:
        client.server = server
        status, done = client.call("POST", f"/api/source/uploads/{upload_id}/finish")
        assert status == 201, done
        assert site.rows("submissions") == [upload_id] and site.rows("uploads") == []
        with store.open("submissions", upload_id) as f:
            assert f.read() == envelope
    site.tool("sweep")
    assert [i for i, _ in store.ids("submissions")] == [upload_id]  # the tip stays
    assert list(store.upload_ids()) == [] and _open_uploads(store) == []
