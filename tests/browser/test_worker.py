"""The crypto Worker (static/js/worker.js) in Debian's Chromium, under the production CSP.

The test page (tests/browser/pages/) is served at the source server's own origin with exactly
``CSP_CRYPTO``, the policy of the pages that seal; the Worker, libsodium.js and the word list
come from the real server (gunicorn), with the headers it sends. Python checks every result.
"""

from __future__ import annotations

import base64
import datetime
import io
import itertools
import json
import os
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Route

from tipline.crypto import codename, envelope, keys, manifest
from tipline.crypto.codename import Wordlist
from tipline.crypto.encoding import b64e
from tipline.crypto.format import parse_header
from tipline.crypto.inner import Attachment, Inner
from tipline.server.security import CSP_CRYPTO

from .source_fixtures import Server

pytestmark = pytest.mark.browser
PAGES = Path(__file__).parent / "pages"
WASM_CSP = "script-src 'self' 'wasm-unsafe-eval'"


def _serve_test_page(csp: str) -> Callable[[Route], None]:
    """Serve tests/browser/pages/ at the server's origin under ``csp``."""

    def handler(route: Route) -> None:
        name = route.request.url.rsplit("/", 1)[1]
        kind = {"page.html": "text/html", "page.js": "text/javascript"}[name]
        route.fulfill(
            status=200,
            body=(PAGES / ("worker.html" if name == "page.html" else name)).read_bytes(),
            headers={
                "Content-Type": kind,
                "Content-Security-Policy": csp,
                "Cache-Control": "no-store",
            },
        )

    return handler


@pytest.fixture
def page(chromium: Browser, source_server: Server) -> Iterator[Page]:
    context = chromium.new_context()
    context.route(f"{source_server.url}/__worker_test__/*", _serve_test_page(CSP_CRYPTO))
    page = context.new_page()
    response = page.goto(f"{source_server.url}/__worker_test__/page.html")
    assert response is not None and response.headers["content-security-policy"] == CSP_CRYPTO
    page.wait_for_selector("body[data-ready=yes]")
    yield page
    context.close()


def _org_key(server: Server) -> str:
    return b64e(server.app.config["ORG_PUBLIC_KEY_BYTES"])


def _installed_version(server: Server) -> int:
    """The version of the manifest the server serves, read as Python reads it."""
    with urllib.request.urlopen(server.url + "/api/source/manifest", timeout=10) as response:
        signed = json.loads(response.read())
    version: int = json.loads(base64.b64decode(signed["body"]))["version"]
    return version


def _start(page: Page, server: Server) -> None:
    started = page.evaluate("o => workerTest.start(o)", _org_key(server))
    assert started["ok"], started
    assert started["result"]["version"] == _installed_version(server)


def test_the_production_csp_is_the_one_under_test(source_server: Server, page: Page) -> None:
    def script_src(policy: str) -> str:
        (directive,) = [d.strip() for d in policy.split(";") if d.strip().startswith("script-src")]
        return directive

    assert script_src(CSP_CRYPTO) == WASM_CSP  # nothing looser: no 'unsafe-eval', no inline
    for path in ("/submit", "/static/js/worker.js", "/static/build/libsodium.js"):
        response = page.request.get(source_server.url + path)
        assert response.ok, path
        assert response.headers["content-security-policy"] == CSP_CRYPTO, path


def test_worker_seals_a_multi_mib_file(
    page: Page, source_server: Server, tmp_path: Path, wordlist: Wordlist
) -> None:
    assert page.evaluate("workerTest.wasmWorks()") is True
    _start(page, source_server)
    made = page.evaluate("workerTest.codename()")
    assert made["ok"], made
    made = made["result"]
    big = os.urandom(3 * (1 << 20) + 12345)  # several 64 KiB chunks, not a multiple of one
    small = b"second file\n"
    (tmp_path / "leak.pdf").write_bytes(big)
    (tmp_path / "note.txt").write_bytes(small)
    page.set_input_files("#files", [str(tmp_path / "leak.pdf"), str(tmp_path / "note.txt")])
    message = "Sealed in Chromium ✓ — проверка"
    sealed = page.evaluate("([m, k]) => workerTest.seal(m, k)", [message, made["replyPublicKey"]])
    assert sealed["ok"], sealed
    data = base64.b64decode(sealed["envelope"])
    # Streamed: the size announced before sealing is exact; every piece is what was asked for
    # (the last one the rest), so the Worker never hands out more than one piece at a time.
    assert sealed["size"] == len(data)
    sizes = sealed["pieceSizes"]
    assert len(sizes) > 10 and all(n == 1 << 18 for n in sizes[:-1]) and 0 < sizes[-1] <= 1 << 18
    header = base64.b64decode(sealed["header"])
    assert data.startswith(header) and len(header) == len(parse_header(data).encode())
    assert parse_header(data).key_ids == (source_server.journalist.public.key_id,)

    files: list[io.BytesIO] = []

    def sink(index: int, attachment: Attachment) -> io.BytesIO:
        files.append(io.BytesIO())
        return files[-1]

    inner = envelope.open_envelope(io.BytesIO(data), [source_server.journalist.secret_key], sink)
    assert inner.kind == "submission" and inner.sealed_by == "browser"
    assert inner.message == message
    assert [(a.name, a.size, a.type) for a in inner.attachments] == [
        ("leak.pdf", len(big), "application/pdf"),
        ("note.txt", len(small), "text/plain"),
    ]
    assert [f.getvalue() for f in files] == [big, small]

    # The codename was made in the browser; Python derives the same keys from it.
    derived = codename.derive(codename.normalize(wordlist, made["codename"]))
    assert len(made["codename"].split()) == 7
    assert inner.reply_public_key == derived.reply_public_key
    assert made["loginToken"] == b64e(derived.login_token)

    progress = sealed["progress"]
    assert len(progress) == len(sizes)  # one per piece
    assert progress[-1][0] == progress[-1][1] == inner.content_length()
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(progress))
    assert page.evaluate("workerTest.violations") == []


def test_a_cancelled_seal_is_gone(page: Page, source_server: Server, wordlist: Wordlist) -> None:
    _start(page, source_server)
    reply_key = b64e(codename.derive(codename.generate(wordlist)).reply_public_key)
    got = page.evaluate("k => workerTest.sealCancel('cancel me', k)", reply_key)
    assert got["first"] == 1024 and got["end"] is False
    assert got["after"]["ok"] is False and got["after"]["kind"] == "failed"


def test_derive_matches_python(page: Page, source_server: Server, wordlist: Wordlist) -> None:
    _start(page, source_server)
    typed = "  " + codename.generate(wordlist).upper().replace(" ", " \t ") + "\n"
    got = page.evaluate("c => workerTest.derive(c)", typed)
    assert got["ok"], got
    derived = codename.derive(codename.normalize(wordlist, typed))
    assert got["result"]["loginToken"] == b64e(derived.login_token)
    assert got["result"]["replySecretKey"] == b64e(derived.reply_secret_key)

    bad = "abacus abdomen abdominal abide abiding ability secretword"
    refused = page.evaluate("c => workerTest.derive(c)", bad)
    assert refused["ok"] is False and refused["kind"] == "codename_error"
    assert refused["error"].startswith("that is not a valid codename")
    assert "secretword" not in refused["error"] and "abacus" not in refused["error"]


def test_worker_opens_a_python_reply(page: Page, source_server: Server, wordlist: Wordlist) -> None:
    _start(page, source_server)
    derived = codename.derive(codename.generate(wordlist))
    out = io.BytesIO()
    text = "A reply from the desk. " * 4000  # over one chunk
    envelope.seal(
        out,
        [derived.reply_public_key, source_server.journalist.public.public_key],
        Inner("reply", "desk", text, None, (Attachment("x.txt", 3, ""),)),
        [io.BytesIO(b"abc")],
    )
    key = b64e(derived.reply_secret_key)
    opened = page.evaluate("([e, k]) => workerTest.open(e, k)", [b64e(out.getvalue()), key])
    assert opened["ok"] and opened["result"]["message"] == text
    damaged = bytearray(out.getvalue())
    damaged[-1] ^= 1
    refused = page.evaluate("([e, k]) => workerTest.open(e, k)", [b64e(bytes(damaged)), key])
    assert refused["ok"] is False and refused["kind"] == "open_error"
    assert refused["error"] == (
        "the envelope could not be opened: it is damaged, truncated, or "
        "not sealed to any of your keys"
    )


def test_init_refuses_a_tampered_manifest(page: Page, source_server: Server) -> None:
    org = _org_key(source_server)
    text = page.evaluate("workerTest.manifestText()")
    signed = json.loads(text)
    fields = json.loads(base64.b64decode(signed["body"]))
    fields["version"] += 1  # a rollback-proof newer version, if only it were signed
    body = json.dumps(fields).encode()
    tampered = json.dumps({**signed, "body": b64e(body)})
    refused = page.evaluate("([o, m]) => workerTest.init(o, m)", [org, tampered])
    assert refused["ok"] is False and refused["kind"] == "manifest_error"
    assert refused["error"] == (
        "the key manifest was refused: the signature does not verify "
        "against this tip line's org key"
    )
    # Nothing was kept from the refused manifest: sealing is refused too.
    sealed = page.evaluate("workerTest.seal('x', null)")
    assert sealed["ok"] is False
    # Signed by another org: refused, although it is a valid manifest.
    other = keys.OrgSecret.generate()
    today = datetime.datetime.now(datetime.UTC).date()
    foreign = manifest.sign_manifest(
        other, 5, [source_server.journalist.public], today, today + datetime.timedelta(days=3)
    ).decode()
    refused = page.evaluate("([o, m]) => workerTest.init(o, m)", [org, foreign])
    assert refused["ok"] is False and "signature does not verify" in refused["error"]
    # The real one still verifies in the same Worker.
    accepted = page.evaluate("([o, m]) => workerTest.init(o, m)", [org, text])
    assert accepted["ok"] and accepted["result"]["version"] == _installed_version(source_server)


def test_without_wasm_unsafe_eval_the_worker_cannot_start(
    chromium: Browser, source_server: Server
) -> None:
    """The CSP is really enforced on the Worker: without 'wasm-unsafe-eval' libsodium cannot
    compile, so the passing tests above ran under the policy, not around it.
    """
    strict = CSP_CRYPTO.replace(" 'wasm-unsafe-eval'", "")
    context = chromium.new_context()
    context.route(f"{source_server.url}/__worker_test__/*", _serve_test_page(strict))

    def strip(route: Route) -> None:
        response = route.fetch()
        route.fulfill(
            response=response, headers={**response.headers, "content-security-policy": strict}
        )

    context.route(f"{source_server.url}/static/**/*.js", strip)
    page = context.new_page()
    page.goto(f"{source_server.url}/__worker_test__/page.html")
    page.wait_for_selector("body[data-ready=yes]")
    started = page.evaluate("o => workerTest.start(o)", _org_key(source_server))
    # libsodium aborts with WebAssembly.RuntimeError when the CSP forbids compiling its module.
    assert started["ok"] is False and started["kind"] == "failed"
    assert started["name"] == "RuntimeError"
    context.close()
