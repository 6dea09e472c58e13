"""A small import (and a reply) run as its own process, so tests/desk/test_promises.py can watch
every write under strace.

    python -m tests.desk.import_probe WORK

WORK holds ``vault/`` and ``bundle.tlb``; the reply bundle goes to WORK/reply.tlb.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tipline.desk.importer import import_bundle
from tipline.desk.outgoing import write_reply
from tipline.desk.vault import Vault

PASS = "correct horse battery"
REPLY = "PROBEREPLYMARKER see you at noon"


def main() -> None:
    work = Path(sys.argv[1])
    with Vault.open(work / "vault", PASS) as vault, (work / "bundle.tlb").open("rb") as src:
        report = import_bundle(vault, src)
        assert report.ok and report.added, report
        source = vault.store.get(report.added[0]).source_id
        write_reply(vault, source, REPLY, [], work / "reply.tlb")
    print(len(report.added))


if __name__ == "__main__":
    main()
