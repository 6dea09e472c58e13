"""Staff pages come in every language the source side has, through the same catalogues.

Three checks that no staff string is left in English:
- the template sources: every staff template's text (outside ``{{ }}``/``{% %}``) and every
  user-visible attribute is empty of letters, i.e. all of it goes through ``_()``/``ngettext``;
- the rendered pages: every staff template is rendered in English, French and Russian with a
  real app and data that shows each branch (journalist and admin logged in, a source with
  submissions, an expiring manifest, a digest subscriber, an empty source, refusals built in
  Python), and no English sentence of the English page survives in the French one, nor any
  English word (other than names and data) in the Russian one;
- the catalogues (tests/server/test_translations.py): every msgid, staff ones included, has a
  non-empty msgstr in each language and keeps its placeholders.

Each check has a control: an unmarked sentence planted in a template, or a Python-built
message whose translation is switched off, must make it fail.
"""

from __future__ import annotations

import base64
import datetime
import io
import re
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jinja2
import pytest
from flask import Flask, template_rendered
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.datastructures import FileStorage

from tipline.crypto import manifest
from tipline.server import accounts, db, keyset
from tipline.server.i18n import language_names
from tipline.server.models import Account, AuditEntry, DigestSubscription, Source

from .conftest import Keys, make_staff, page_token, staff_login
from .test_journalist import multipart, store_source

ROOT = Path(__file__).resolve().parents[2]
STAFF_TEMPLATES = sorted(
    p.relative_to(ROOT / "templates").as_posix()
    for folder in ("journalist", "admin")
    for p in (ROOT / "templates" / folder).glob("*.html")
)
LANGUAGES = ("fr", "ru")
# Names that are the same in every language (products, units, commands shown as such).
SAME_EVERYWHERE = {
    "Tipline",
    "OpenPGP",
    "age",
    "age1",
    "UTC",
    "API",
    "USB",
    "FreeOTP",
    "Aegis",
    "2FA",
    "MiB",
    "GiB",
    "tipline",
    "desk",
    "manifest",
    "renew",
}
TODAY = datetime.datetime.now(datetime.UTC).date()


# -- Template sources --------------------------------------------------------------------------

JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
SHOWN_ATTRIBUTES = re.compile(r'\b(?:aria-label|placeholder|alt|title)="([^"]*)"')


def unmarked(source: str) -> list[str]:
    """Text of a template that does not go through the catalogues: what is left of its text
    nodes and shown attributes once every Jinja expression and tag is taken out."""
    found = [
        v for v in SHOWN_ATTRIBUTES.findall(source) if re.search(r"[A-Za-z]", JINJA.sub("", v))
    ]
    text = re.sub(r"<[^>]*>", " ", JINJA.sub(" ", source))
    found += [t.strip() for t in re.split(r"\s{2,}|\n", text) if re.search(r"[A-Za-z]", t)]
    return found


@pytest.mark.parametrize("name", STAFF_TEMPLATES)
def test_staff_template_has_no_unmarked_text(name: str) -> None:
    assert unmarked((ROOT / "templates" / name).read_text()) == []


def test_template_check_sees_unmarked_text() -> None:
    """Control: plain text and a plain attribute are found; marked ones are not."""
    assert unmarked('<p>Hello there</p><nav aria-label="Main">') == ["Main", "Hello there"]
    assert unmarked("<p>{{ _('Hello there') }}</p><nav aria-label=\"{{ _('Main') }}\">") == []


# -- Rendered pages ----------------------------------------------------------------------------


class _Text(HTMLParser):
    """Text nodes and shown attributes, outside <code>, <script>, <style>, the QR code and
    text areas (the manifest carried back to be installed)."""

    SKIP = frozenset({"code", "script", "style", "svg", "textarea"})

    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[str] = []
        self.depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.depth += 1
        for key, value in attrs:
            if key in ("aria-label", "placeholder", "alt") and value:
                self.nodes.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        text = " ".join(data.split())
        if text and not self.depth:
            self.nodes.append(text)


def text_nodes(html: str) -> set[str]:
    parser = _Text()
    parser.feed(html)
    return set(parser.nodes)


def _without(node: str, data: set[str]) -> str:
    for value in sorted(data, key=len, reverse=True):
        node = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", " ", node)
    return node


def _words(text: str) -> list[str]:
    return re.findall(r"[0-9]*[A-Za-z][A-Za-z0-9'-]*[A-Za-z0-9]", text)


def english_left(english: str, other: str, language: str, data: set[str]) -> list[str]:
    """The text of the other language's page that is still English: for French, every text
    that has three words in a row of the English page; for Russian, every text with a Latin
    word. Names, data and the commands shown as they are typed do not count."""
    runs = set()
    for node in text_nodes(english):
        words = _words(_without(node, data))
        runs |= {tuple(words[i : i + 3]) for i in range(len(words) - 2)}
    left = []
    for node in sorted(text_nodes(other)):
        words = _words(_without(node, data))
        if language == "ru":
            if set(words) - SAME_EVERYWHERE:
                left.append(node)
        elif {tuple(words[i : i + 3]) for i in range(len(words) - 2)} & runs:
            left.append(node)
    return left


class World:
    """A tip line with something on every staff page, and a client per language and person."""

    def __init__(self, app: Flask, org_keys: Keys) -> None:
        self.app = app
        with app.app_context():
            # a manifest that expires in 10 days: the notice on every page, the warning on /admin
            signed = manifest.sign_manifest(
                org_keys.org,
                1,
                [org_keys.alice.public],
                TODAY,
                TODAY + datetime.timedelta(days=10),
            )
            keyset.install(db.session(), signed, org_keys.org.public.public_key)
        self.next_manifest = manifest.sign_manifest(
            org_keys.org,
            2,
            [org_keys.bob.public],
            TODAY,
            TODAY + datetime.timedelta(days=90),
        )
        self.stored = store_source(app, [org_keys.alice.public.public_key], count=6)
        self.stale = store_source(
            app, [org_keys.bob.public.public_key], count=1
        )  # sealed to no key in force
        self.root, self.jo = make_staff(app, "root", admin=True), make_staff(app, "jo")
        with app.app_context():
            session = db.session()
            session.add(
                Source(
                    id="e" * 32,
                    designation="empty heron",
                    token_hash=b"e" * 32,
                    reply_public_key=b"k" * 32,
                    created=TODAY,
                    submitted=False,
                )
            )
            root = accounts.by_username(session, "root")
            assert root is not None
            session.add(
                DigestSubscription(
                    account_id=root.id,
                    email="root@example.org",
                    key_kind="age",
                    public_key="age1x",
                    fingerprint="f00d",
                    body_size=1,
                )
            )
            accounts.new_token(session, root, "laptop")
            session.commit()
        self.clients: dict[tuple[str, str], FlaskClient] = {}

    def client(self, who: str, language: str) -> FlaskClient:
        """A browser of ``who`` (root, jo or nobody) that chose ``language``."""
        key = (who, language)
        if key not in self.clients:
            client = self.app.test_client()
            client.get(f"/journalist/login?lang={language}")
            if who != "nobody":
                staff = self.root if who == "root" else self.jo
                assert staff_login(self.app, client, staff).status_code == 303
            self.clients[key] = client
        return self.clients[key]

    def data(self) -> set[str]:
        """Everything the pages show that is data, not interface: names, labels, the audit
        log's records, designations."""
        with self.app.app_context():
            session = db.session()
            found = {a.username for a in session.scalars(select(Account))}
            found |= {s.designation for s in session.scalars(select(Source))}
            for entry in session.scalars(select(AuditEntry)):
                found |= {entry.action, entry.detail or ""}
        languages = self.app.config["LANGUAGES"]  # the language switch and the settings form
        found |= set(languages) | {name for _, name in language_names(languages)}
        commands = {"tipline-desk manifest renew", "tipline-retention.timer", "/admin/keys/stale"}
        commands |= {f"-----{e} PGP PUBLIC KEY BLOCK-----" for e in ("BEGIN", "END")}
        found |= commands | {"laptop", "Alice", "Bob", "root@example.org", "jo@example.org"}
        return {d for d in found if d}


PARTS = re.compile(r"\{%\s*(?:extends|include)\s+\"([^\"]+)\"")
Page = Callable[[World, str], Any]  # (world, language) -> response


def _post(world: World, who: str, language: str, path: str, form: str, **data: Any) -> Any:
    client = world.client(who, language)
    return client.post(path, data={"csrf_token": page_token(client.get(form).text), **data})


def _account_id(world: World, name: str) -> str:
    with world.app.app_context():
        found = accounts.by_username(db.session(), name)
        assert found is not None
        return found.id


def _enrol(world: World, language: str, wrong: bool) -> Any:
    name = f"new-{language}-{'wrong' if wrong else 'first'}"
    passphrase = accounts.generate_passphrase()
    with world.app.app_context():
        accounts.create(db.session(), name, passphrase)
    client = world.app.test_client()
    client.get(f"/journalist/login?lang={language}")
    token = page_token(client.get("/journalist/login").text)
    step = client.post(
        "/journalist/login",
        data={"csrf_token": token, "username": name, "password": passphrase},
    )
    assert step.status_code == 303, step.text
    if not wrong:
        return client.get("/journalist/enrol")
    token = page_token(client.get("/journalist/enrol").text)
    return client.post("/journalist/enrol", data={"csrf_token": token, "code": "000000"})


def _upload(world: World, language: str, data: bytes) -> Any:
    client = world.client("root", language)
    token = page_token(client.get("/admin/").text)
    upload = FileStorage(io.BytesIO(data), "m.json", "manifest")
    return multipart(client, "/admin/manifest", {"csrf_token": token, "manifest": upload})


def _manifest(world: World, language: str) -> Any:
    shown = _upload(world, language, world.next_manifest)
    assert base64.b64encode(world.next_manifest).decode() in shown.text
    return shown


PAGES: dict[str, Page] = {
    "login": lambda w, lang: w.client("nobody", lang).get("/journalist/login"),
    "login refused": lambda w, lang: _post(
        w, "nobody", lang, "/journalist/login", "/journalist/login", username="x", password="y"
    ),
    "enrol": lambda w, lang: _enrol(w, lang, wrong=False),
    "enrol wrong code": lambda w, lang: _enrol(w, lang, wrong=True),
    "sources": lambda w, lang: w.client("jo", lang).get("/journalist/"),
    "source": lambda w, lang: w.client("jo", lang).get(f"/journalist/sources/{w.stored.source_id}"),
    "confirm deleting submissions": lambda w, lang: _post(
        w,
        "jo",
        lang,
        "/journalist/selection",
        "/journalist/",
        action="delete",
        ids=w.stored.submissions[:2],
        back=w.stored.source_id,
    ),
    "confirm deleting a source": lambda w, lang: _post(
        w, "jo", lang, f"/journalist/sources/{w.stored.source_id}/delete", "/journalist/"
    ),
    "deleted": lambda w, lang: _post(
        w,
        "jo",
        lang,
        "/journalist/delete",
        "/journalist/",
        confirm="yes",
        ids=[w.stored.submissions[("en", "fr", "ru").index(lang)]],
    ),
    "refused selection": lambda w, lang: _post(
        w, "jo", lang, "/journalist/selection", "/journalist/", action="export"
    ),
    "replies": lambda w, lang: w.client("jo", lang).get("/journalist/replies"),
    "my account": lambda w, lang: w.client("jo", lang).get("/journalist/account"),
    "wrong current password": lambda w, lang: _post(
        w, "jo", lang, "/journalist/account", "/journalist/account", current="no", new="x" * 20
    ),
    "weak new password": lambda w, lang: _post(
        w,
        "jo",
        lang,
        "/journalist/account",
        "/journalist/account",
        current=w.jo.password,
        new="short",
    ),
    "new token": lambda w, lang: _post(
        w, "root", lang, "/journalist/account/tokens", "/journalist/account", label="laptop"
    ),
    "digest off": lambda w, lang: w.client("jo", lang).get("/journalist/digest/"),
    "digest on": lambda w, lang: w.client("root", lang).get("/journalist/digest/"),
    "digest refused": lambda w, lang: _post(
        w, "jo", lang, "/journalist/digest/", "/journalist/digest/", email="", key=""
    ),
    "digest key refused": lambda w, lang: _post(
        w,
        "jo",
        lang,
        "/journalist/digest/",
        "/journalist/digest/",
        email="jo@example.org",
        key="not a key",
    ),
    "admin": lambda w, lang: w.client("root", lang).get("/admin/"),
    "account made": lambda w, lang: _post(
        w, "root", lang, "/admin/accounts", "/admin/", username=f"made-{lang}"
    ),
    "username taken": lambda w, lang: _post(
        w, "root", lang, "/admin/accounts", "/admin/", username="jo"
    ),
    "confirm disable": lambda w, lang: _post(
        w, "root", lang, f"/admin/accounts/{_account_id(w, 'jo')}/disable", "/admin/"
    ),
    "cannot remove oneself": lambda w, lang: _post(
        w, "root", lang, f"/admin/accounts/{_account_id(w, 'root')}/remove", "/admin/"
    ),
    "settings refused": lambda w, lang: _post(
        w,
        "root",
        lang,
        "/admin/settings",
        "/admin/",
        org_name="",
        retention_max_days="99999999",
        languages=["en"],
    ),
    "manifest summary": _manifest,
    "stale": lambda w, lang: w.client("root", lang).get("/admin/keys/stale"),
    "health": lambda w, lang: w.client("root", lang).get("/admin/health"),
}


@pytest.fixture
def world(app_factory: Any, org_keys: Keys) -> World:
    return World(app_factory(install=False), org_keys)


@pytest.fixture
def rendered(world: World) -> Iterator[set[str]]:
    """The names of the templates rendered while the test runs."""
    names: set[str] = set()

    def seen(sender: Flask, template: jinja2.Template, **extra: Any) -> None:
        names.add(template.name or "")

    with template_rendered.connected_to(seen, world.app):
        yield names


def check_page(world: World, name: str) -> dict[str, list[str]]:
    """English left on one page, per language (empty when all of it is translated)."""
    english = PAGES[name](world, "en")
    assert english.status_code < 500, english.text
    assert '<html lang="en" dir="ltr">' in english.text, name
    left = {}
    for language in LANGUAGES:
        other = PAGES[name](world, language)
        assert other.status_code == english.status_code, (name, language, other.text)
        assert f'<html lang="{language}" dir="ltr">' in other.text, name
        left[language] = english_left(english.text, other.text, language, world.data())
    return left


def test_every_staff_page_is_translated(world: World, rendered: set[str]) -> None:
    left = {name: check_page(world, name) for name in PAGES}
    untranslated = [
        f"{n} ({lang}): {t}" for n, f in left.items() for lang, ts in f.items() for t in ts
    ]
    assert untranslated == []
    # every staff template was rendered, itself or through a page that extends or includes it
    # (a page added without a case here fails)
    used = set(rendered)
    for name in rendered & set(STAFF_TEMPLATES):
        used |= set(PARTS.findall((ROOT / "templates" / name).read_text()))
    assert set(STAFF_TEMPLATES) <= used, set(STAFF_TEMPLATES) - used
    # the branches that matter were shown
    admin = world.client("root", "fr").get("/admin/").text
    assert 'id="manifest-expiring"' in admin and 'id="manifest-notice"' in admin
    assert "f00d" in admin  # the digest subscriber
    health = world.client("root", "ru").get("/admin/health").text
    assert "/admin/health/prune-sources" in health  # the empty source's prune form


def test_planted_unmarked_sentence_is_found(world: World) -> None:
    """Control: a sentence added to a template without ``_()`` makes the check fail."""
    original = (ROOT / "templates" / "journalist" / "index.html").read_text()
    planted = original.replace(
        "{% endblock %}", "<p>Nobody marked this sentence for translation.</p>\n{% endblock %}"
    )
    loader = world.app.jinja_loader
    assert loader is not None
    world.app.jinja_env.loader = jinja2.ChoiceLoader(
        [jinja2.DictLoader({"journalist/index.html": planted}), loader]
    )
    world.app.jinja_env.cache = {}  # type: ignore[assignment]
    assert check_page(world, "sources") == {
        "fr": ["Nobody marked this sentence for translation."],
        "ru": ["Nobody marked this sentence for translation."],
    }


def test_untranslated_python_message_is_found(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control: a message a view builds in Python, shown untranslated, makes the check fail;
    and so does a single English word on a Russian page."""
    from tipline.server import auth

    assert check_page(world, "wrong current password") == {"fr": [], "ru": []}
    monkeypatch.setattr(auth, "gettext", lambda s, **v: s % v if v else s)
    found = check_page(world, "wrong current password")
    assert found == {
        "fr": ["The current password is wrong."],
        "ru": ["The current password is wrong."],
    }
    words = english_left("<p>Sources</p>", "<p>Sources</p>", "ru", set())
    assert (
        words == ["Sources"] and english_left("<p>Sources</p>", "<p>Sources</p>", "fr", set()) == []
    )


# -- Choosing the language ---------------------------------------------------------------------


def test_staff_choose_their_language(app_factory: Any) -> None:
    app = app_factory()
    jo = make_staff(app, "jo")
    # the admin offers sources English only: staff may still read French or Russian
    with app.app_context():
        from tipline.server import settings

        settings.save(db.session(), settings.Settings(languages=("en",)))

    plain = app.test_client()
    assert staff_login(app, plain, jo).status_code == 303
    page = plain.get("/journalist/").text
    assert '<html lang="en"' in page and "<h1>Sources</h1>" in page  # the control: English

    chosen = app.test_client()
    login = chosen.get("/journalist/login?lang=fr").text
    assert '<html lang="fr" dir="ltr">' in login and "Connexion des journalistes" in login
    assert 'href="?lang=ru"' in login and 'aria-current="true">Français' in login
    assert staff_login(app, chosen, jo).status_code == 303  # the choice outlives logging in
    page = chosen.get("/journalist/account").text
    assert '<html lang="fr"' in page and "<h1>Mon compte</h1>" in page
    out = chosen.post("/journalist/logout", data={"csrf_token": page_token(page)})
    assert out.status_code == 303  # and logging out keeps it too (docs/JOURNALIST.md)
    assert "Connexion des journalistes" in chosen.get("/journalist/login").text

    asked = app.test_client()
    asked.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ru,en;q=0.5"
    login = asked.get("/journalist/login").text
    assert '<html lang="ru" dir="ltr">' in login and "Вход для журналистов" in login
    assert staff_login(app, asked, jo).status_code == 303
    assert "<h1>Источники</h1>" in asked.get("/journalist/").text
    # a choice beats Accept-Language
    assert "<h1>Sources</h1>" in asked.get("/journalist/?lang=en").text
    assert "<h1>Sources</h1>" in asked.get("/journalist/").text

    # sources are still offered English only
    source = app.test_client()
    source.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ru"
    assert '<html lang="en"' in source.get("/").text
