"""Every `tipline-desk` command of docs/DESK.md §3 (importing), §4 (triage and safe copies),
§5 (replying) and §8 (checking, backing up, restoring), run as written on a journalist's desk,
with the item and source the text names.

What a shell would do is done here: `~` is the home folder, `/media/usb` a temporary folder, the
alternatives of `list --starred | --tag politics | --source "tidy otter"` are run one by one, and
`--out ...` names a file. `delete`, which the text lists among triage, runs last, since the
examples after it still need the item. The passphrase's cost is the test preset's.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from tipline.bundle import KIND_REPLY, BundleReader
from tipline.desk.cli import cli

from .conftest import PASS, bundle_bytes, make_source, public_keys, submission
from .safe import samples

DOC = Path(__file__).parents[2] / "docs" / "DESK.md"


def section(title: str) -> str:
    text = DOC.read_text()
    start = text.index(f"\n## {title}")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def lines(text: str) -> list[str]:
    """The `tipline-desk` commands of every ```sh block: continuation lines joined, comments
    (after two spaces and a #) dropped."""
    found: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for raw in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s{2,}#.*$", "", raw).strip()
            if line.startswith("tipline-desk "):
                found.append(re.sub(r"\s+", " ", line))
    return found


def test_import_triage_copies_and_replies_run_as_written(
    tmp_path: Path, vault_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, usb = tmp_path / "home", tmp_path / "usb"
    home.mkdir()
    usb.mkdir()
    monkeypatch.chdir(home)
    source = make_source("tidy otter")
    item_id = "3fa4c2" + "d1" + "0" * 24
    sub = submission(
        public_keys(vault_dir),
        source,
        "Ships leave the harbour at night; the ledger shows it.",
        [("report.pdf", samples.plain_pdf(2), "application/pdf"), ("notes.txt", b"dates\n")],
        item_id=item_id,
    )
    (usb / "tipline-export-2026-11-24.tlb").write_bytes(bundle_bytes([sub]))
    (home / "answer.txt").write_text("Could you send the next page?\n")
    (home / "questions.pdf").write_bytes(samples.plain_pdf(1))
    outputs: dict[str, str] = {}

    def run(line: str) -> None:
        line = line.replace("/media/usb", str(usb)).replace("~/", f"{home}/")
        line = line.replace("--out ...", f"--out {usb}/reply-2.tlb")
        args = shlex.split(line, comments=True)[1:]
        result = CliRunner().invoke(
            cli, ["--vault", str(vault_dir), *args], input=f"{PASS}\ny\n"
        )  # fmt: skip
        assert result.exit_code == 0, (line, result.output)
        outputs[line] = result.output

    imported = lines(section("3. Importing"))
    assert imported == ["tipline-desk import /media/usb/tipline-export-2026-11-24.tlb"]
    run(imported[0])

    triage = lines(section("4. Triage"))
    assert len(triage) == 15 and triage[-6] == "tipline-desk delete 3fa4c2"
    for line in triage:
        if line == "tipline-desk delete 3fa4c2":
            continue
        if " | " in line:  # alternatives: each is a command of its own
            head, *rest = line.split(" | ")
            base = head.rsplit(" --", 1)[0]
            run(head)
            for alternative in rest:
                run(f"{base} {alternative}")
            continue
        run(line)
    assert "harbour" in outputs["tipline-desk search harbour ledger"]
    assert "tidy otter" in outputs['tipline-desk list --source "tidy otter"']
    assert "Ships leave the harbour" in outputs["tipline-desk show 3fa4c2"]
    tagged = CliRunner().invoke(
        cli, ["--vault", str(vault_dir), "list", "--tag", "politics"], input=f"{PASS}\n"
    )  # fmt: skip
    assert "3fa4c2" in tagged.output  # `tag 3fa4c2 politics` took
    exported = home / "Exported"
    names = sorted(p.name for p in exported.iterdir() if not p.name.endswith(".json"))
    assert "3fa4c2d1-01-report.viewing.pdf" in names  # the default: a viewing copy
    assert "3fa4c2d1-01-report.publication.pdf" in names
    assert "3fa4c2d1-01-report.pdf" in names  # --original
    assert "3fa4c2d1-message.txt" in names  # --with-message

    replying = section("5. Replying")
    # §5.1 (sharing triage) needs two desks and a server: tests/test_triage_sync.py runs it.
    for line in lines(replying[: replying.index("\n### 5.1")]):
        run(line)
    for name in ("reply-tidy-otter.tlb", "reply-2.tlb"):
        with (usb / name).open("rb") as f:
            entries = list(BundleReader(f, KIND_REPLY))  # read whole: checksums and all
        assert len(entries) == 1

    backup = tmp_path / "backup"
    backup.mkdir()
    checked = lines(section("8. Checking"))
    assert len(checked) == 4
    for line in checked:
        run(line.replace("/media/backup", str(backup)))
    restored = home / "tipline-vault-restored"
    assert (restored / "vault.key").is_file()
    assert "3fa4c2" in CliRunner().invoke(
        cli, ["--vault", str(restored), "list"], input=f"{PASS}\n"
    ).output  # fmt: skip

    run("tipline-desk delete 3fa4c2")
    assert "3fa4c2" not in CliRunner().invoke(
        cli, ["--vault", str(vault_dir), "list"], input=f"{PASS}\n"
    ).output  # fmt: skip
