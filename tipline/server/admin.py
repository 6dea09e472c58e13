"""The admin interface (/admin/): accounts, the signed key manifest, instance settings and the
audit log. Every change is recorded in the audit log with who made it.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from dataclasses import replace

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext, ngettext
from flask_babel import lazy_gettext as _l

from ..crypto.errors import ManifestError
from ..crypto.keys import fingerprint
from ..crypto.manifest import MAX_SIGNED_MANIFEST
from . import accounts, audit, db, digest, health, keyset, mailer, manifests, retention, settings
from .auth import account, staff_required
from .forms import ActionForm
from .i18n import refusal
from .models import Account, today
from .security import read_up_to
from .sources import blobs
from .spooled import SpoolFile
from .staff_forms import ManifestConfirmForm, ManifestUploadForm, NewAccountForm, SettingsForm
from .transfer import ID

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.context_processor(keyset.notice_context)
MIB = 1 << 20


def _settings_form(formdata: bool) -> SettingsForm:
    current = settings.current()
    form = SettingsForm() if formdata else SettingsForm(formdata=None)
    form.languages.choices = [(code, code) for code in current_app.config["LANGUAGES"]]
    if not formdata:
        form.org_name.data = current.org_name
        form.submissions_open.data = current.submissions_open
        form.max_submission_size.data = current.max_submission_size // MIB
        form.retention_days_after_download.data = current.retention_days_after_download
        form.retention_max_days.data = current.retention_max_days
        form.languages.data = list(current.languages) or list(current_app.config["LANGUAGES"])
        form.pow.data = current.pow
        form.pow_form.data = current.pow_form
    return form


def _page(status: int = 200, **extra: object) -> ResponseReturnValue:
    session = db.session()
    lifetime = keyset.lifetime(session, current_app.config["ORG_PUBLIC_KEY_BYTES"])
    keys = lifetime.current
    values: dict[str, object] = {
        "lifetime": lifetime,
        "key_names": [keyset.KeyName.of(r) for r in keys.manifest.recipients] if keys else [],
        "accounts": session.query(Account).order_by(Account.username).all(),
        "new_account": NewAccountForm(formdata=None),
        "settings_form": _settings_form(False),
        "upload": ManifestUploadForm(formdata=None),
        "action": ActionForm(),
        "keys": keys,
        "fingerprint": fingerprint(current_app.config["ORG_PUBLIC_KEY_BYTES"]),
        "audit_log": audit.recent(session, 50),
        "digests": digest.overview(session),
        "digest_relay": current_app.config["DIGEST_ENABLED"]
        and mailer.Relay.from_config(current_app.config).describe(),
        "me": account(),
        "message": None,
        "error": None,
        "passphrase": None,
    }
    values.update(extra)
    return render_template("admin/index.html", **values), status


@bp.get("/")
@staff_required(admin=True)
def index() -> ResponseReturnValue:
    """Accounts, keys, settings and the audit log on one page."""
    return _page()


@bp.get("/keys/stale")
@staff_required(admin=True)
def stale_items() -> ResponseReturnValue:
    """Submissions sealed only to keys the manifest in force no longer lists."""
    session, org = db.session(), current_app.config["ORG_PUBLIC_KEY_BYTES"]
    items, more = manifests.sealed_only_to_retired(session, blobs(), org)
    return render_template(
        "admin/stale.html",
        items=items,
        more=more,
        keys=keyset.current(session, org),
        me=account(),
    )


def _account(account_id: str) -> Account:
    if not ID.match(account_id):
        abort(404)
    found = db.session().get(Account, account_id)
    if found is None:
        abort(404)
    return found


@bp.post("/accounts")
@staff_required(admin=True)
def add_account() -> ResponseReturnValue:
    """Add a journalist (or admin) with a generated passphrase, shown once."""
    form = NewAccountForm()
    if not form.validate_on_submit():
        return _page(400, error=gettext("The form expired or the username is missing."))
    passphrase = accounts.generate_passphrase()
    try:
        made = accounts.create(
            db.session(), form.username.data, passphrase, is_admin=bool(form.is_admin.data)
        )
    except accounts.AccountError as exc:
        return _page(400, error=refusal(exc))
    role = "admin" if made.is_admin else "journalist"
    audit.record(db.session(), account().username, "add-account", f"{made.username} ({role})")
    return _page(
        201, message=gettext("Account %(name)s made.", name=made.username), passphrase=passphrase
    )


# What each account change does, shown on its confirmation page before anything happens.
CONFIRM = {
    "reset-password": (
        _l("Reset the password of {name}?"),
        _l(
            "A new passphrase is shown once; {name}'s open sessions end at once and the old "
            "password and every API token stop working."
        ),
        _l("Yes, reset the password"),
    ),
    "reset-2fa": (
        _l("Reset two-factor authentication of {name}?"),
        _l(
            "{name} is logged out everywhere, every API token stops working, and they enrol a "
            "new authenticator at their next login."
        ),
        _l("Yes, reset 2FA"),
    ),
    "disable": (
        _l("Disable {name}?"),
        _l(
            "{name} cannot log in; their sessions end and every API token is revoked. "
            "Enabling the account later does not bring the tokens back."
        ),
        _l("Yes, disable"),
    ),
    "remove": (
        _l("Remove {name} for good?"),
        _l(
            "The account, its API tokens and its daily digest are deleted. The audit log keeps "
            "every entry naming {name}. Their desk keys stay in the key manifest until the "
            "signing desk retires them."
        ),
        _l("Yes, remove the account"),
    ),
}
# What the page says once a change is made.
DONE = {
    "reset-password": _l("Reset password: {name}."),
    "reset-2fa": _l("Reset 2fa: {name}."),
    "disable": _l("Disable: {name}."),
    "enable": _l("Enable: {name}."),
}


@bp.post("/accounts/<account_id>/<change>")
@staff_required(admin=True)
def change_account(account_id: str, change: str) -> ResponseReturnValue:
    """Reset a password (a new passphrase is shown once) or 2FA, disable, enable or remove.
    Every change but enable shows a confirmation page first; only a post that carries
    ``confirm=yes`` (the page's button) changes anything."""
    target = _account(account_id)
    if change not in CONFIRM and change != "enable":
        abort(404)
    form = ActionForm()
    if not form.validate_on_submit():
        return _page(400, error=gettext("The form expired. Nothing was changed."))
    session, me = db.session(), account()
    if change in ("disable", "remove"):
        if target.id == me.id:
            own = {
                "disable": _l("You cannot disable your own account."),
                "remove": _l("You cannot remove your own account."),
            }
            return _page(400, error=str(own[change]))
        if target.is_admin and not target.disabled and accounts.count_admins(session) <= 1:
            last = {
                "disable": _l("The last admin cannot be disabled."),
                "remove": _l("The last admin cannot be removed."),
            }
            return _page(400, error=str(last[change]))
    if change in CONFIRM and request.form.get("confirm") != "yes":
        title, detail, button = CONFIRM[change]
        return render_template(
            "admin/confirm.html",
            title=str(title).format(name=target.username),
            detail=str(detail).format(name=target.username),
            button=str(button),
            target=target,
            change=change,
            form=form,
            me=me,
        )
    passphrase = None
    if change == "reset-password":
        passphrase = accounts.generate_passphrase()
        accounts.set_password(session, target, passphrase)
    elif change == "reset-2fa":
        accounts.reset_totp(session, target)
    elif change == "remove":
        name = target.username
        accounts.remove(session, target)
        audit.record(session, me.username, change, name)
        return _page(message=gettext("Removed the account %(name)s.", name=name))
    else:
        accounts.set_disabled(session, target, change == "disable")
    audit.record(session, me.username, change, target.username)
    if target.id == me.id and change == "reset-password":
        # This session has ended with the reset; the new passphrase is shown this once, or
        # an admin who reset their own password could never log in again.
        return _page(
            message="Your password was reset and your sessions ended: write down the new "
            "passphrase below, then log in again with it.",
            passphrase=passphrase,
        )
    if target.id == me.id and change != "enable":
        return redirect(url_for("auth.login"), 303)
    return _page(
        message=str(DONE[change]).format(name=target.username),
        passphrase=passphrase,
    )


@bp.post("/settings")
@staff_required(admin=True)
def save_settings() -> ResponseReturnValue:
    """Store the instance settings (the source side reads them on its next request)."""
    form = _settings_form(True)
    if not form.validate_on_submit():
        errors = "; ".join(
            f"{form[k].label.text}: {' '.join(v).rstrip('.')}" for k, v in form.errors.items()
        )
        return _page(
            400,
            error=gettext(
                "The settings were not saved: %(reason)s.",
                reason=errors or gettext("the form expired"),
            ),
        )
    value = replace(
        settings.Settings(),
        org_name=(form.org_name.data or "").strip(),
        submissions_open=bool(form.submissions_open.data),
        max_submission_size=(form.max_submission_size.data or 0) * MIB,
        retention_days_after_download=form.retention_days_after_download.data or 0,
        retention_max_days=form.retention_max_days.data or 0,
        languages=tuple(form.languages.data or ()),
        pow=form.pow.data or "off",
        pow_form=bool(form.pow_form.data),
    )
    try:
        settings.check(
            value,
            current_app.config["LANGUAGES"],
            int(current_app.config["MAX_SUBMISSION_SIZE"]),
        )
    except settings.SettingsError as exc:
        return _page(
            400, error=gettext("The settings were not saved: %(reason)s.", reason=refusal(exc))
        )
    changed = settings.save(db.session(), value)
    if changed:
        audit.record(db.session(), account().username, "settings", ", ".join(changed))
    return _page(message=gettext("Settings saved."))


def _read_upload(form: ManifestUploadForm) -> bytes:
    stream = form.manifest.data.stream
    source = stream.reader() if isinstance(stream, SpoolFile) else stream
    # Not one read: the spool gives a 64 KiB chunk a read, and a file over 64 KiB cut there
    # would be refused as broken JSON, not as too large.
    data = read_up_to(source, MAX_SIGNED_MANIFEST + 1)
    if len(data) > MAX_SIGNED_MANIFEST:
        raise ManifestError(gettext("the file is larger than a signed manifest can be"))
    return data


@bp.post("/manifest")
@staff_required(admin=True)
def manifest_upload() -> ResponseReturnValue:
    """Check an uploaded manifest and show what it would change; nothing is installed yet."""
    form = ManifestUploadForm()
    if not form.validate_on_submit():
        return _page(
            400, error=gettext("Choose a signed key manifest file (the form may have expired).")
        )
    try:
        data = _read_upload(form)
        summary = manifests.preview(db.session(), data, current_app.config["ORG_PUBLIC_KEY_BYTES"])
    except ManifestError as exc:
        return _page(400, error=gettext("%(reason)s. Nothing was installed.", reason=refusal(exc)))
    confirm = ManifestConfirmForm(formdata=None)
    confirm.manifest.data = base64.b64encode(data).decode("ascii")
    return render_template("admin/manifest.html", summary=summary, form=confirm, me=account())


@bp.post("/manifest/confirm")
@staff_required(admin=True)
def manifest_confirm() -> ResponseReturnValue:
    """Install the manifest the summary showed (every rule is checked again)."""
    form = ManifestConfirmForm()
    if not form.validate_on_submit():
        return _page(400, error=gettext("The form expired. Nothing was installed."))
    try:
        data = base64.b64decode(form.manifest.data, validate=True)
    except (binascii.Error, ValueError):
        return _page(
            400, error=gettext("The manifest was damaged on the way. Nothing was installed.")
        )
    try:
        summary = manifests.preview(db.session(), data, current_app.config["ORG_PUBLIC_KEY_BYTES"])
        manifests.install(db.session(), data, current_app.config["ORG_PUBLIC_KEY_BYTES"])
    except ManifestError as exc:
        return _page(400, error=gettext("%(reason)s. Nothing was installed.", reason=refusal(exc)))
    audit.record(
        db.session(),
        account().username,
        "install-manifest",
        f"version {summary.version}: {len(summary.added)} added, {len(summary.retired)} retired",
    )
    return _page(
        message=gettext(
            "Key manifest version %(version)s is now in force.", version=summary.version
        )
    )


def _health(status: int = 200, **extra: object) -> ResponseReturnValue:
    from .sources import blobs

    session = db.session()
    report = health.report(
        session,
        blobs(),
        current_app.config["ORG_PUBLIC_KEY_BYTES"],
        current_app.config["UPLOAD_TTL_HOURS"],
    )
    values: dict[str, object] = {
        "report": report,
        "empty_sources": health.empty_sources(session),
        "action": ActionForm(),
        "me": account(),
        "message": None,
        "error": None,
    }
    values.update(extra)
    return render_template("admin/health.html", **values), status


@bp.get("/health")
@staff_required(admin=True)
def health_page() -> ResponseReturnValue:
    """Every health check (``tipline-server health`` prints the same)."""
    return _health()


@bp.post("/health/prune-sources")
@staff_required(admin=True)
def prune_sources() -> ResponseReturnValue:
    """Remove, now, the sources that never sent anything (retention does it after a day)."""
    if not ActionForm().validate_on_submit():
        return _health(400, error=gettext("The form expired. Nothing was removed."))
    session = db.session()
    # A day two days ahead: every empty source, whatever day it was made, is old enough.
    removed = retention.sweep_empty_sources(session, today() + datetime.timedelta(days=2))
    audit.record(session, account().username, "prune-sources", f"{removed} sources")
    return _health(
        message=ngettext(
            "Removed %(num)d source that never sent anything.",
            "Removed %(num)d sources that never sent anything.",
            removed,
        )
    )
