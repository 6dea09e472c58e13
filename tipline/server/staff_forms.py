"""Flask-WTF forms of the journalist and admin pages: each carries a CSRF token, and each field
is bounded before anything reads it.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    IntegerField,
    PasswordField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from .accounts import MAX_PASSWORD_CHARS
from .settings import MAX_ORG_NAME, MAX_RETENTION_DAYS


class LoginForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped
    """Username, password, and the code from the authenticator app (empty before enrolment)."""

    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(
        _l("Password"), validators=[DataRequired(), Length(max=MAX_PASSWORD_CHARS)]
    )
    code = StringField(_l("Two-factor code"), validators=[Optional(), Length(max=16)])


class CodeForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped
    """One code from the authenticator app."""

    code = StringField(_l("Code from the app"), validators=[DataRequired(), Length(max=16)])


class PasswordForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped
    """Change one's own password (the current one proves it is really you)."""

    current = PasswordField(
        _l("Current password"), validators=[DataRequired(), Length(max=MAX_PASSWORD_CHARS)]
    )
    new = PasswordField(
        _l("New password"), validators=[DataRequired(), Length(max=MAX_PASSWORD_CHARS)]
    )


class TokenForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped
    """Name a new API token."""

    label = StringField(_l("What the token is for"), validators=[DataRequired(), Length(max=64)])


class SelectionForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped
    """A CSRF token for a form whose checkboxes (``ids``) are read and checked by the view."""


class ReplyBundleForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped
    """A reply bundle made on the desk."""

    bundle = FileField(_l("Reply bundle"), validators=[FileRequired()])


class NewAccountForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped
    """A new journalist (or admin)."""

    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=64)])
    is_admin = BooleanField(_l("Administrator"))


class ManifestUploadForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped
    """A signed key manifest file made on the desk."""

    manifest = FileField(_l("Signed key manifest"), validators=[FileRequired()])


class ManifestConfirmForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped
    """The manifest shown in the summary, carried back to be installed."""

    manifest = TextAreaField(validators=[DataRequired(), Length(max=140_000)])


class SettingsForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped
    """Instance settings."""

    org_name = StringField(_l("Organisation name"), validators=[Length(max=MAX_ORG_NAME)])
    submissions_open = BooleanField(_l("Take new submissions"))
    max_submission_size = IntegerField(
        _l("Largest submission, in MiB (0: the configured limit)"),
        validators=[Optional(), NumberRange(min=0, max=1 << 30)],
    )
    retention_days_after_download = IntegerField(
        _l("Delete downloaded submissions after this many days (0: never)"),
        validators=[Optional(), NumberRange(min=0, max=MAX_RETENTION_DAYS)],
    )
    retention_max_days = IntegerField(
        _l("Delete every submission and reply after this many days (0: never)"),
        validators=[Optional(), NumberRange(min=0, max=MAX_RETENTION_DAYS)],
    )
    languages = SelectMultipleField(_l("Languages offered to sources"))
