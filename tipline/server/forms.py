"""Flask-WTF forms: every state-changing POST from a page goes through one, so each carries a
CSRF token.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import MultipleFileField, PasswordField, TextAreaField
from wtforms.validators import DataRequired, Length

from ..crypto.codename import MAX_CODENAME_BYTES


class SubmitForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped
    """A message and any number of files (the no-JS path; the JS path reads the same fields)."""

    message = TextAreaField(_l("Your message"))
    files = MultipleFileField(_l("Files (optional)"))


class CodenameForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped
    """A codename typed by a returning source (to log in, or to read replies without JS)."""

    # A password field: not echoed on screen, not saved in form history.
    codename = PasswordField(
        _l("Your codename"), validators=[DataRequired(), Length(max=4 * MAX_CODENAME_BYTES)]
    )


class ActionForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped
    """A button with nothing but a CSRF token: delete a reply, log out."""
