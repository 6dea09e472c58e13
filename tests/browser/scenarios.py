"""What a source does, written once against ``drivers.Driver`` and run in Chromium and Firefox
ESR at Tor Browser's three levels (tests/browser/test_source_levels.py).
"""

from __future__ import annotations

from pathlib import Path

from .drivers import Driver, wait_until

PREPARING = "Preparing encryption"


def send_button(d: Driver) -> str:
    """The form's Send (or Log in) button at this level: the plain one without scripts."""
    return "#send-plain" if d.level == "safest" else "#send"


def wait_ready(d: Driver, timeout: float = 60) -> str:
    """Wait until the page has decided its path and enabled its button; return what it said
    (at Safest, the <noscript> notice the page shows instead)."""
    if d.level == "safest":
        assert not d.visible("#path-notice")  # nothing a script would have to change
        assert d.visible("#send-plain")
        return d.text("main")
    wait_until(lambda: d.attr("#send", "disabled") is None, timeout, "the page to get ready")
    notice = d.text("#path-notice")
    assert PREPARING not in notice
    return notice


def first_tip(d: Driver, url: str, message: str, files: list[Path]) -> str:
    """A first-time source sends a tip and writes down the codename; returns the codename."""
    d.goto(url + "/submit")
    said = wait_ready(d)
    if d.level == "standard":
        assert "Your browser will lock your tip" in said
    elif d.level == "safer":
        assert "does not let this page lock your tip itself" in said
        assert "the server locks it the moment it arrives" in said
    else:
        assert "the server locks your tip the moment it arrives" in said
        assert "Sending large files?" in said  # the warning before a long, silent upload
    d.fill("#message", message)
    if files:
        d.set_files("#files", files)
    d.click(send_button(d))
    wait_until(
        lambda: d.visible("#codename") and bool(d.text("#codename").strip()), 120, "the codename"
    )
    codename = d.text("#codename").strip()
    assert len(codename.split()) == 7
    assert d.visible("#codename-heading") and "Write down your codename" in d.text(
        "#codename-heading"
    )
    assert not d.visible("#languages")  # nothing may lead away from the only copy
    assert not d.visible("#source-actions")  # the next step waits for "I have written it"
    d.check("#written")
    d.click("#written-form button[type=submit]")
    wait_until(lambda: d.url().endswith("/written"), 30, "the next page")
    assert d.visible("#source-actions")
    assert "Log out" in d.text("#source-actions") and "Send more" in d.text("#source-actions")
    return codename


def read_replies(
    d: Driver, url: str, codename: str, message: str, attachment: tuple[str, bytes]
) -> None:
    """A returning source logs in, reads a reply, saves its attachment, and logs out."""
    d.goto(url + "/login")
    wait_ready(d)
    d.fill("#codename-input", codename)
    d.click(send_button(d))
    name, data = attachment
    if d.level == "standard":
        wait_until(
            lambda: d.visible("#replies-view") and message in d.text("#reply-list"),
            120,
            "the reply opened in the browser",
        )
        assert d.text("#page-heading") == "Replies"
        assert d.visible("#check-again")
        got_name, got = d.download("#reply-list a[download]")
    else:
        wait_until(lambda: d.count("#server-replies") == 1, 60, "the replies page")
        assert message in d.text("#server-replies")
        d.fill("#codename-input", codename)  # typed again: the server never keeps it
        got_name, got = d.download("#server-replies button[name=file]")
    assert got_name == name and got == data
    actions = d.text("#source-actions")
    assert "Check for replies" in actions and "Send more" in actions and "Log out" in actions
    d.click("#source-actions button[type=submit]")
    wait_until(lambda: "You are logged out" in d.text("main"), 30, "the logout page")
