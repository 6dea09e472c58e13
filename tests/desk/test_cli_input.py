"""What the desk's commands do with input the docs show: a passphrase piped on one line where it
is asked twice, no input at all, and an export folder that does not exist yet."""

from __future__ import annotations

import stat
from pathlib import Path

from click.testing import CliRunner, Result

from tipline.desk.cli import cli

from .conftest import Run, bundle_bytes, make_source, public_keys, submission


def test_init_piped_one_line_says_it_needs_two(tmp_path: Path) -> None:
    def init(name: str, *more: str, input: str) -> Result:
        args = ["--vault", str(tmp_path / name), "init", "--role", "both", *more]
        return CliRunner().invoke(cli, args, input=input)

    one = init("a", input="p" * 20 + "\n")
    assert one.exit_code == 2 and not (tmp_path / "a").exists()
    assert "give it on two lines of standard input" in one.stderr, one.stderr
    assert "differ" not in one.stderr
    nothing = init("b", input="")
    assert nothing.exit_code == 2 and "no passphrase on standard input" in nothing.stderr
    two = init("c", "--kdf", "interactive", input=("p" * 20 + "\n") * 2)
    assert two.exit_code == 0, two.output  # the control: two lines are accepted


def test_export_makes_a_missing_folder_for_the_user_only(
    tmp_path: Path, vault_dir: Path, run: Run
) -> None:
    sub = submission(public_keys(vault_dir), make_source(), "see file", [("a.txt", b"hello")])
    bundle = tmp_path / "b.tlb"
    bundle.write_bytes(bundle_bytes([sub]))
    run("import", str(bundle))
    out = tmp_path / "not" / "yet" / "Exported"
    run("export", sub.item.id[:10], "--to", str(out))
    assert out.is_dir() and stat.S_IMODE(out.stat().st_mode) == 0o700
    assert [p.name for p in out.iterdir() if p.name.endswith(".txt")]
    wrong = CliRunner().invoke(
        cli, ["--vault", str(vault_dir), "export", sub.item.id[:10], "--to", str(tmp_path / "w")],
        input="not the passphrase\n",
    )  # fmt: skip
    assert wrong.exit_code != 0 and not (tmp_path / "w").exists()  # made only once unlocked
