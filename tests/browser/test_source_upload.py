"""The resumable upload (static/js/source/upload.js) in Chromium against gunicorn: a connection
killed in the middle resumes and completes, without sending an acknowledged byte twice.

The envelope is sealed here in Python (the browser's crypto Worker is tested on its own); the
page uploads it exactly as the submit page does after the Worker has sealed.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from playwright.sync_api import Browser, Route

from tipline.crypto import format as fmt
from tipline.crypto.codename import derive, generate
from tipline.crypto.encoding import b64e
from tipline.wordlist import load_wordlist

from ..server.conftest import sealed_submission
from ..server.replies import open_stored, submission_ids
from .source_fixtures import Server, new_context

pytestmark = pytest.mark.browser

UPLOAD = """
async ([envelopeB64, headerSize, loginToken, replyKey, chunkSize]) => {
  const { Upload } = await import("/static/js/source/upload.js");
  const bytes = Uint8Array.from(atob(envelopeB64), (c) => c.charCodeAt(0));
  const seen = [];
  const upload = new Upload({
    envelope: new Blob([bytes]), header: bytes.subarray(0, headerSize), manifestVersion: 1,
    chunkSize, onProgress: (done, size, resuming) => seen.push([done, resuming]),
    newSource: { loginToken, replyPublicKey: replyKey },
  });
  const result = await upload.run();
  return { result, seen };
}
"""


def test_a_killed_connection_resumes(chromium: Browser, source_server: Server) -> None:
    derived = derive(generate(load_wordlist()))
    payload = bytes(range(256)) * 1200  # 300 KiB: several 64 KiB chunks
    envelope = sealed_submission(
        [source_server.journalist.public.public_key],
        "resumed",
        {"f.bin": payload},
        derived.reply_public_key,
    )
    header_size = fmt.header_size_from_prefix(envelope[:11])
    context = new_context(chromium)
    page = context.new_page()
    offsets: list[int] = []
    killed: list[int] = []

    def chunk(route: Route) -> None:
        if route.request.method != "PUT":
            route.fallback()
            return
        offsets.append(int(route.request.url.rsplit("offset=", 1)[1]))
        if len(offsets) == 2 and not killed:
            # The server stores the chunk, then the circuit drops before the answer arrives.
            route.fetch()
            killed.append(offsets[-1])
            route.abort("connectionreset")
            return
        route.fallback()

    page.route("**/api/source/uploads/*", chunk)
    page.goto(source_server.url + "/submit")
    before = submission_ids(source_server.app)
    outcome: dict[str, Any] = page.evaluate(
        UPLOAD,
        [
            base64.b64encode(envelope).decode(),
            header_size,
            b64e(derived.login_token),
            b64e(derived.reply_public_key),
            65536,
        ],
    )
    assert "error" not in outcome, outcome
    assert killed, "the second chunk was not cut off"
    assert any(resuming for _, resuming in outcome["seen"])  # the page said it was resuming
    # The killed chunk had reached the server, so the page went on after it, not from it.
    assert offsets.count(killed[0]) == 1
    assert offsets == sorted(offsets)
    (new,) = submission_ids(source_server.app) - before
    with source_server.app.extensions["tipline.blobs"].open("submissions", new) as blob:
        assert blob.read() == envelope
    inner, files = open_stored(source_server.app, source_server.journalist, new)
    assert inner.message == "resumed" and files == [payload]
    context.close()
