"""`tipline-desk export`: safe copies of an item's attachments, with their fingerprints."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .common import opened
from .text import one_line

if TYPE_CHECKING:
    from .safe.export import ExportReport, Progress

# The converter (tipline/desk/safe/) starts programs; it is imported by the two commands that
# use it, so that every other command runs without loading subprocess at all.


class _Bars:
    """One progress bar per attachment, counting pages, on standard error."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.number = 0

    def __call__(self, step: Progress) -> None:
        if step.number != self.number or (self.bar is None and step.pages):
            self.close()
            self.number = step.number
            if step.pages:
                label = f"attachment {step.number}/{step.count} {one_line(step.name, 30)}"
                self.bar = click.progressbar(
                    length=step.pages, label=label, file=sys.stderr, show_pos=True
                )
                self.bar.__enter__()
        if self.bar is not None and step.done > self.bar.pos:
            self.bar.update(step.done - self.bar.pos)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@click.command("export")
@click.argument("item")
@click.option(
    "--to",
    "folder",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The folder for the copies (made, for you only, if it does not exist).",
)
@click.option(
    "--publication",
    is_flag=True,
    help="Publication copies: the original format with its metadata removed.",
)
@click.option(
    "--original",
    is_flag=True,
    help="The original files exactly as sent (dangerous to open: only when you must).",
)
@click.option("--ocr", is_flag=True, help="Recognise the text of viewing copies (Tesseract).")
@click.option("--attachment", type=click.IntRange(1, 64), help="Only attachment number N.")
@click.option("--with-message", is_flag=True, help="Also write the message as a text file.")
@click.pass_context
def export_cmd(
    ctx: click.Context,
    item: str,
    folder: Path,
    publication: bool,
    original: bool,
    ocr: bool,
    attachment: int | None,
    with_message: bool,
) -> None:
    """Write safe copies of an item's attachments into FOLDER.

    By default, viewing copies: documents and images rebuilt from pixels in a sandbox, text as
    plain text. Each copy gets a .provenance.json sidecar naming the original by its SHA-256.
    """
    from .safe.converter import load_config, make_converter
    from .safe.export import ORIGINAL_WARNING, Options, export, prepare, record

    if publication and original:
        raise click.UsageError("choose --publication or --original, not both")
    copy = "original" if original else "publication" if publication else "viewing"
    if original:
        click.echo(f"tipline-desk: warning: {ORIGINAL_WARNING}", err=True)
    converter = make_converter(load_config())  # chosen once, from the environment
    options = Options(copy=copy, ocr=ocr, with_message=with_message, only=attachment)
    with opened(ctx) as vault:
        source = prepare(vault, vault.store.resolve(item))
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        bars = _Bars()
        try:
            report = export(source, folder, converter, options, bars)
        finally:
            bars.close()
        record(vault, report)
    _print(report)
    if not report.ok:
        sys.exit(1)


@click.command("doctor")
def doctor_cmd() -> None:
    """Check that this machine can make safe copies (by making a few, in the sandbox)."""
    from .safe.converter import load_config, make_converter
    from .safe.doctor import checks

    failed = 0
    for what, problem in checks(make_converter(load_config())):
        if problem is None:
            click.echo(f"ok: {what}")
        else:
            failed += 1
            click.echo(f"tipline-desk: {what}: {problem}", err=True)
    if failed:
        sys.exit(1)
    click.echo("safe copies can be made on this machine")


def _print(report: ExportReport) -> None:
    if report.envelope_sha256:
        click.echo(f"item {report.item_id}  envelope sha256 {report.envelope_sha256}")
    else:
        click.echo(
            f"item {report.item_id}  envelope sha256 not recorded (imported by an older desk)"
        )
    if report.message:
        click.echo(f"message: {report.message}")
    for a in report.attachments:
        click.echo(
            f"attachment {a.number}: {one_line(a.name, 80)}  {a.size} bytes  "
            f"claimed {one_line(a.claimed_type, 40)}  content {a.content or '?'}"
        )
        click.echo(f"  sha256 {a.sha256}")
        if a.path is not None:
            click.echo(f"  {a.copy} copy: {a.path}")
            click.echo(f"  provenance: {a.sidecar}")
        for note in a.notes:
            click.echo(f"  note: {one_line(note, 300)}")
        if a.problem:
            click.echo(f"tipline-desk: attachment {a.number} not exported: {a.problem}", err=True)
    if report.cancelled:
        click.echo("tipline-desk: the export was cancelled", err=True)
    if not report.attachments and not report.message:
        click.echo("this item has no attachments", err=True)
