"""A triage listing over 3,100 items in the desk's own triage database, and a sort of all their
whole rows on the same connection, run as its own process so that tests/desk/test_spill.py can
watch it under strace.

    python -m tests.desk.spill_probe [default]

``default`` restores SQLite's default temp store on the connection (the positive control).
"""

from __future__ import annotations

import sys

import nacl.utils

from tipline.desk.store import Store

ITEMS = 3100


def main() -> None:
    store = Store()
    if sys.argv[1:] == ["default"]:
        store.db.execute("PRAGMA temp_store=DEFAULT")
    for n in range(ITEMS):
        store.add_item(
            item_id=nacl.utils.random(16).hex(),
            source_id=nacl.utils.random(16).hex(),
            designation="tidy otter",
            reply_public_key=None,
            direction="in",
            received=f"2026-11-{n % 28 + 1:02d}",
            imported="2026-11-30",
            size=100,
            digest=bytes(32),
            sealed_by="browser",
            message=f"SPILLMARKER {n} " + "the ministry informant " * 10,
            attachments=[
                (
                    f"SPILLNAME-{n}-{k}-from-the-ministry-of-the-interior.pdf",
                    1000,
                    "application/pdf",
                )
                for k in range(2)
            ],
        )
    _threads, total = store.query(limit=10 * ITEMS)
    # The listing sorts only ids and dates now (store.py picks the newest ids before reading
    # rows), so it has nothing decrypted to spill even with the default temp store. A sort of
    # whole rows on the same connection (what the listing did until then) still has: with
    # MEMORY it stays in memory, and the control (default) must be caught spilling it.
    whole_rows = store._SELECT + " ORDER BY i.received DESC, i.seq DESC LIMIT ?"
    store.db.execute(whole_rows, (10 * ITEMS,)).fetchall()
    print(total)


if __name__ == "__main__":
    main()
