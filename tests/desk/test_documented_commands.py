"""Every `tipline-desk` command that docs/DESK.md §2 (separate desks) and §7 (rotating and
retiring) shows, run as written, each in the vault of the desk the text puts it on.

Only two things differ from a person at a keyboard: /media/usb is a temporary folder that is
emptied of a file before a command writes it again (as when the stick was carried off and
cleared), and the example key id `4478` stands for the first digits of Alice's first key. The
passphrase's cost is the test preset's; the commands are unchanged.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from tipline.desk import vault as vault_module
from tipline.desk.cli import cli
from tipline.desk.vault import Vault

from .conftest import PASS

DOC = Path(__file__).parents[2] / "docs" / "DESK.md"


def section(title: str) -> str:
    text = DOC.read_text()
    start = text.index(f"\n## {title}")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def blocks(text: str) -> list[list[str]]:
    """The `tipline-desk` lines of each ```sh block, comments dropped."""
    found = re.findall(r"```sh\n(.*?)```", text, re.S)
    return [
        [line.strip() for line in block.splitlines() if line.strip().startswith("tipline-desk ")]
        for block in found
    ]


def test_desk_md_commands_run_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(vault_module.KDF_PRESETS, "moderate", vault_module.KDF_PRESETS["test"])
    usb = tmp_path / "usb"
    usb.mkdir()
    desks = {name: tmp_path / name for name in ("signer", "alice", "solo")}
    ran: list[tuple[str, str]] = []
    first_alice_key: list[str] = []

    def run(desk: str, line: str) -> str:
        line = line.replace("/media/usb", str(usb))
        if first_alice_key:
            line = line.replace(" 4478", " " + first_alice_key[0][:4])
        args = shlex.split(line, comments=True)[1:]
        for flag in ("--out", "--manifest-out"):
            if flag in args:
                (Path(args[args.index(flag) + 1])).unlink(missing_ok=True)
        stdin = f"{PASS}\n{PASS}\n" if args[0] == "init" else f"{PASS}\ny\n"
        result = CliRunner().invoke(cli, ["--vault", str(desks[desk]), *args], input=stdin)
        assert result.exit_code == 0, (desk, line, result.output)
        ran.append((desk, line))
        return result.stdout

    two = blocks(section("2. Desks of their own"))
    assert len(two) == 5
    for desk, block in zip(("signer", "alice", "signer", "solo", "signer"), two, strict=True):
        for line in block:
            run(desk, line)
    with Vault.open(desks["alice"], PASS) as alice:
        first_alice_key.append(alice.keyring.recipients[0].key_id)
        assert alice.keyring.org is None and alice.keyring.org_public is not None
    with Vault.open(desks["signer"], PASS) as signer:
        assert [r.secret for r in signer.keyring.recipients] == [None]

    seven = blocks(section("7. Rotating and retiring keys"))
    assert len(seven) == 4
    for desk, block in zip(("alice", "signer", "solo", "signer"), seven, strict=True):
        for line in block:
            run(desk, line)
    # the one written inline: on the journalist's own desk, away from the leaked key
    inline = re.search(r"`(tipline-desk keys retire 4478 --compromised)`", section("7. Rotating"))
    assert inline
    run("alice", inline.group(1))

    with Vault.open(desks["signer"], PASS) as signer:
        states = {r.key_id[:4]: r.state for r in signer.keyring.recipients}
    assert states[first_alice_key[0][:4]] == "compromised"
    assert list(states.values()).count("active") == 1
    with Vault.open(desks["alice"], PASS) as alice:
        mine = {r.key_id: r.state for r in alice.keyring.recipients}
    assert mine[first_alice_key[0]] == "compromised" and "active" in mine.values()
    assert len(ran) == 23


def test_deploy_md_first_steps_run_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The desk block of docs/DEPLOY.md "From a fresh server": one block, three desks, switched
    by its `# signing desk` / `# each journalist's desk` comments; files in the current folder."""
    monkeypatch.setitem(vault_module.KDF_PRESETS, "moderate", vault_module.KDF_PRESETS["test"])
    monkeypatch.chdir(tmp_path)
    text = (DOC.parent / "DEPLOY.md").read_text()
    block = re.search(r"```sh\n(\s*# signing desk\n.*?)```", text, re.S)
    assert block
    desk, ran = "", 0
    for raw in block.group(1).splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("# "):
            desk = "alice" if "journalist" in line else "signer"
            continue
        args = shlex.split(line, comments=True)[1:]
        stdin = f"{PASS}\n{PASS}\n" if args[0] == "init" else f"{PASS}\ny\n"
        result = CliRunner().invoke(cli, ["--vault", str(tmp_path / desk), *args], input=stdin)
        assert result.exit_code == 0, (desk, line, result.output)
        ran += 1
    assert ran == 8
    from tipline.crypto.manifest import verify_manifest
    from tipline.desk.vault import today

    with Vault.open(tmp_path / "signer", PASS) as signer:
        assert signer.keyring.org is not None
        org = signer.keyring.org.public.public_key
    body = verify_manifest((tmp_path / "manifest.signed.json").read_bytes(), org, today())
    assert [(r.account, r.label) for r in body.manifest.recipients] == [("alice", "Alice Reporter")]
