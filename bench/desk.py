"""Benchmark the desk: import and open submissions against `age -d`, and triage at scale.

    python bench/desk.py                                  # quick: 64 MiB, 10,000 items
    python bench/desk.py --size-mib 1024 --items 100000   # the full run (docs/DESK.md)

1. Import: an export bundle of --size-mib of submissions (8 MiB attachments) is imported into a
   vault (checksums, every envelope opened and authenticated, fingerprints, ciphertext written
   and fsynced), twice into a fresh vault, alternated with writing + fsyncing the same number of
   bytes into the same folder (the disk's own speed, measured in the same run: a shared machine's
   load and a virtual disk's moods reach both). The target (issue 12): the import at least 0.8 of
   the disk's write + fsync speed. Then every stored envelope is opened again, against `age -d`
   on one age file of the same plaintext bytes, to /dev/null (ratio age's time over ours). Then
   the parts an import cannot avoid, each timed alone on the same bytes, in CPU seconds (BLAKE2b
   of the bundle checksum, the raw secretstream pull, SHA-256 of the fingerprints, reading, and
   writing), and the best import they allow on the cores this machine has.
2. Triage: a vault with --items items (the triage rows are inserted directly, with messages
   of about 300 characters; the envelopes are not needed to list or search) is opened, listed
   (newest 50, grouped by source) and searched, in-process and through the real `tipline-desk`
   command (best of three runs of each whole command, Python's start included; goal: each
   under 1 s). The TUI is started as `tipline-desk tui` starts it (tipline/desk/tui/start.py),
   headless, on a fresh copy of the vault each time (its newest item new, as after an import),
   and timed from starting the process to its inbox drawn, with the CPU used by then (best of
   three); issue 12's target, drawn within 1 s of start at 100,000 items, is a TARGET line.
   The passphrase's Argon2id cost is reported on its own: it is a chosen delay, not a cost of
   listing (the vault here uses the weak "test" preset so it does not hide the rest).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import nacl.bindings as sodium  # noqa: E402
import nacl.hashlib  # noqa: E402
import nacl.utils  # noqa: E402

from tipline.bundle import KIND_EXPORT, ExportItem, write_bundle  # noqa: E402
from tipline.crypto import envelope, keys  # noqa: E402
from tipline.crypto.inner import Attachment, Inner  # noqa: E402
from tipline.crypto.stream import Puller  # noqa: E402
from tipline.desk.importer import import_bundle  # noqa: E402
from tipline.desk.vault import KDF_PRESETS, Vault, today  # noqa: E402

PASS = "benchmark passphrase"
ITEM_MIB = 8
WORDS = [
    "harbour",
    "mayor",
    "ledger",
    "ministry",
    "contract",
    "police",
    "border",
    "shipment",
    "invoice",
    "witness",
    "meeting",
    "bribe",
    "camp",
    "archive",
    "river",
    "station",
    "report",
    "payment",
    "minister",
    "council",
]


def timed(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def make_vault(path: Path) -> list[bytes]:
    vault = Vault.create(path, PASS, "test")
    vault.keyring.add("Bench Journalist", today())
    vault.save_keyring()
    pks = [r.secret.public.public_key for r in vault.keyring.active()]
    vault.close()
    return pks


def bench_import(folder: Path, size_mib: int) -> None:
    vault_dir = folder / "vault"
    pks = make_vault(vault_dir)
    count = max(1, size_mib // ITEM_MIB)
    block = os.urandom(ITEM_MIB << 20)
    reply_pk = bytes(keys.RecipientSecret.generate("source").public.public_key)
    sealed_file = folder / "envelope.bin"
    with sealed_file.open("wb") as f:
        inner = Inner(
            "submission", "browser", "bench", reply_pk, (Attachment("data.bin", len(block)),)
        )
        envelope.seal(f, pks, inner, [io.BytesIO(block)])
    data = sealed_file.read_bytes()
    items = [
        ExportItem(nacl.utils.random(16).hex(), "ab" * 16, "bench source", "2026-11-25", len(data))
        for _ in range(count)
    ]
    bundle = folder / "export.tlb"
    with bundle.open("wb") as f:
        write_bundle(f, KIND_EXPORT, items, lambda _: io.BytesIO(data))
    # The same plaintext bytes for age: one file, one identity.
    identity = folder / "age.key"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    recipient = subprocess.run(
        ["age-keygen", "-y", str(identity)], check=True, capture_output=True, text=True
    ).stdout.strip()
    age_file = folder / "plain.age"
    with subprocess.Popen(
        ["age", "-r", recipient, "-o", str(age_file)], stdin=subprocess.PIPE
    ) as proc:
        assert proc.stdin is not None
        for _ in range(count):
            proc.stdin.write(block)
        proc.stdin.close()
    age_times = []
    for _ in range(2):
        t, _ = timed(
            lambda: subprocess.run(
                ["age", "-d", "-i", str(identity), "-o", os.devnull, str(age_file)], check=True
            )
        )
        age_times.append(t)
    age_t = min(age_times)
    envelopes = count * len(data)  # the bytes an import writes into the vault
    disk_times, import_times, cpus = [], [], []
    for run in range(2):  # alternated, so a busy moment of the machine reaches both
        disk_times.append(write_fsync(folder, envelopes))
        if run:
            shutil.rmtree(vault_dir)
            shutil.copytree(folder / "vault-template", vault_dir)
        else:
            shutil.copytree(vault_dir, folder / "vault-template")
        with Vault.open(vault_dir, PASS) as vault, bundle.open("rb") as src:
            before = resource.getrusage(resource.RUSAGE_SELF)
            import_t, report = timed(lambda: import_bundle(vault, src))
            after = resource.getrusage(resource.RUSAGE_SELF)
            assert report.ok and len(report.added) == count, report
        import_times.append(import_t)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    disk_t, import_t = min(disk_times), min(import_times)
    cpu = cpus[import_times.index(import_t)]
    with Vault.open(vault_dir, PASS) as vault:

        def open_all() -> None:
            ids = vault.keyring.identities()
            for item_id in vault.store.all_ids():
                with vault.item_file(item_id).open("rb", buffering=0) as f:
                    envelope.open_envelope(f, ids)

        open_t, _ = timed(open_all)
    total = count * ITEM_MIB
    mib = envelopes / 2**20
    ratio = disk_t / import_t
    print(
        f"import {mib:.0f} MiB of envelopes ({total} MiB of attachments in {count} "
        f"submissions), best of 2 each, alternated (load {os.getloadavg()[0]:.1f})"
    )
    print(
        f"  write + fsync {mib:.0f} MiB {disk_t:7.2f} s  {mib / disk_t:7.0f} MiB/s  "
        f"(this disk, runs {', '.join(f'{t:.2f}' for t in disk_times)} s)"
    )
    print(
        f"  tipline-desk import   {import_t:7.2f} s  {mib / import_t:7.0f} MiB/s  "
        f"(runs {', '.join(f'{t:.2f}' for t in import_times)} s)"
    )
    print(
        f"  TARGET import >= 0.8 x disk write+fsync: ratio {ratio:.2f}: "
        f"{'ok' if ratio >= 0.8 else 'NOT MET'}"
    )
    print(
        f"  import used {cpu:.2f} s of CPU in {import_t:.2f} s "
        f"({cpu / import_t:.2f} cores busy on average; the machine has {os.cpu_count()})"
    )
    print(f"  age -d (baseline)     {age_t:7.2f} s  {total / age_t:7.0f} MiB/s")
    print(
        f"  open stored items     {open_t:7.2f} s  {total / open_t:7.0f} MiB/s  "
        f"ratio {age_t / open_t:.2f} (against age -d, goal >= 0.9)"
    )
    components(folder, bundle, disk_t, cpu)


def write_fsync(folder: Path, size: int) -> float:
    """Write ``size`` bytes (1 MiB writes) into a new file in ``folder`` and fsync it and the
    folder: what an import must do with the envelopes, and nothing else."""
    data = os.urandom(1 << 20)
    target = folder / "write-test.bin"
    start = time.perf_counter()
    with target.open("wb", buffering=0) as f:
        left = size
        while left:
            left -= f.write(memoryview(data)[: min(left, len(data))])
        os.fsync(f.fileno())
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    elapsed = time.perf_counter() - start
    target.unlink()
    return elapsed


def components(folder: Path, bundle: Path, disk_t: float, import_cpu: float) -> None:
    """Time each unavoidable part of an import alone, in CPU seconds, on the bundle's bytes."""
    size = bundle.stat().st_size
    step = 1 << 20
    data = os.urandom(step)
    key = os.urandom(32)

    def hash_all() -> None:
        digest = nacl.hashlib.blake2b(digest_size=32)  # as tipline/bundle.py
        for _ in range(size // step):
            digest.update(data)
        digest.digest()

    def hashlib_blake2b_all() -> None:  # not used: libsodium only (docs/DESK.md §10)
        digest = hashlib.blake2b(digest_size=32)
        for _ in range(size // step):
            digest.update(data)
        digest.digest()

    def sha_all() -> None:
        digest = hashlib.sha256()
        for _ in range(size // step):
            digest.update(data)
        digest.digest()

    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    header = sodium.crypto_secretstream_xchacha20poly1305_init_push(state, key)
    chunks = [
        sodium.crypto_secretstream_xchacha20poly1305_push(state, data[:65536], None, 0)
        for _ in range(64)
    ]  # 4 MiB of real chunks, pulled again and again

    def pull_all() -> None:
        puller = Puller(key, header, 65536)
        out = bytearray(65536)
        for n in range(size // 65536):
            if n % len(chunks) == 0:
                puller = Puller(key, header, 65536)
            chunk = chunks[n % len(chunks)]
            assert puller.pull_at(chunk, 0, len(chunk), out, 0, None) is not None

    def read_all() -> None:
        buf = bytearray(step)
        with bundle.open("rb", buffering=0) as f:
            while f.readinto(buf):
                pass

    target = folder / "write-test.bin"

    def write_all() -> None:  # the CPU part of writing; the disk's part is write + fsync above
        with target.open("wb", buffering=0) as f:
            for _ in range(size // step):
                f.write(data)

    parts = {}
    for name, fn in (
        ("BLAKE2b (bundle checksum)", hash_all),
        ("secretstream pull", pull_all),
        ("SHA-256 (a fingerprint)", sha_all),
        ("read the bundle", read_all),
        ("write (no fsync)", write_all),
    ):
        parts[name] = min(cpu_timed(fn) for _ in range(2))
    target.unlink()
    other = min(cpu_timed(hashlib_blake2b_all) for _ in range(2))
    mib = size / 2**20
    print(f"  each part alone on {mib:.0f} MiB, CPU seconds (best of 2):")
    for name, t in parts.items():
        print(f"    {name:<26}{t:7.2f} s  {mib / t:7.0f} MiB/s")
    print(
        f"    (BLAKE2b by Python's hashlib {other:7.2f} s  {mib / other:7.0f} MiB/s: the same "
        "function, not used: crypto is libsodium's)"
    )
    # Two fingerprints (the envelope's and its attachment's) of about the same bytes each.
    work = sum(parts.values()) + parts["SHA-256 (a fingerprint)"]
    cores = len(os.sched_getaffinity(0))
    longest = max(
        parts["BLAKE2b (bundle checksum)"] + parts["read the bundle"], parts["secretstream pull"]
    )
    cpu_bound = max(work / cores, longest)  # the import's threads, given every core
    print(
        f"  all of an import's CPU work: {work:.2f} s (it used {import_cpu:.2f} s); given "
        f"{cores} free cores, no import is faster than {cpu_bound:.2f} s "
        f"({mib / cpu_bound:.0f} MiB/s), nor than the disk ({disk_t:.2f} s here): ratio at "
        f"best {disk_t / max(cpu_bound, disk_t):.2f}; the target needs "
        f"{0.8 * mib / disk_t:.0f} MiB/s"
    )


def cpu_timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.thread_time()
    fn()
    return time.thread_time() - start


def fill(vault: Vault, count: int) -> None:
    rng = random.Random(7)
    sources = [(nacl.utils.random(16).hex(), f"source {n}") for n in range(max(1, count // 5))]
    store = vault.store
    store.db.execute("BEGIN")
    for n in range(count):
        sid, name = sources[rng.randrange(len(sources))]
        message = " ".join(rng.choice(WORDS) for _ in range(40)) + f" number{n}"
        store.add_item(
            item_id=nacl.utils.random(16).hex(),
            source_id=sid,
            designation=name,
            reply_public_key=bytes(32),
            direction="in",
            received=f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}",
            imported="2026-11-25",
            size=5000,
            digest=bytes(32),
            sealed_by="browser",
            message=message,
            attachments=[("report.pdf", 1000, "application/pdf")] if n % 3 else [],
        )
    store.db.execute("COMMIT")
    vault.save_store()


def bench_triage(folder: Path, count: int) -> None:
    vault_dir = folder / "big"
    make_vault(vault_dir)
    with Vault.open(vault_dir, PASS) as vault:
        fill_t, _ = timed(lambda: fill(vault, count))
    size = (vault_dir / "triage.sealed").stat().st_size
    print(
        f"triage with {count} items (sealed database {size / 2**20:.1f} MiB, "
        f"filled in {fill_t:.1f} s)"
    )
    open_t, vault = timed(lambda: Vault.open(vault_dir, PASS))
    list_t, (_threads, total) = timed(lambda: vault.store.query(limit=50))
    search_t, (_, found) = timed(lambda: vault.store.query(text="ledger witness", limit=50))
    vault.close()
    print(f"  open vault (no KDF)   {open_t:7.3f} s")
    print(f"  list, in process      {list_t:7.3f} s  ({total} items)")
    print(f"  search, in process    {search_t:7.3f} s  ({found} matches)")
    desk = Path(sys.executable).with_name("tipline-desk")
    for args in (["list"], ["search", "ledger", "witness"]):
        runs = []
        for _ in range(3):  # best of three: the machine is shared
            t, proc = timed(
                lambda a=args: subprocess.run(
                    [str(desk), "--vault", str(vault_dir), *a],
                    input=PASS + "\n",
                    capture_output=True,
                    text=True,
                )
            )
            assert proc.returncode == 0, proc.stderr
            runs.append(t)
        t = min(runs)
        verdict = "ok" if t < 1 else "OVER"
        print(
            f"  tipline-desk {args[0]:<9}{t:7.3f} s  goal < 1 s: {verdict} "
            "(whole command: Python start, unlock, query, print)"
        )
    TUI_CPU.clear()
    runs = []
    for _ in range(3):  # each on a fresh copy: its newest item new, as after an import
        copy = folder / "big-copy"
        shutil.copytree(vault_dir, copy)
        runs.append(tui_start(copy))
        shutil.rmtree(copy)
    t = min(runs)
    print(
        f"  TUI start, CPU time   {min(TUI_CPU):7.3f} s  (the process's CPU until drawn, all "
        "threads, best of the same three: load adds less to it than to the wall clock)"
    )
    print(
        f"  TUI start to inbox    {t:7.3f} s  (headless, from starting the process to the inbox "
        f"drawn: Python start, imports, unlock, first render; runs "
        f"{', '.join(f'{r:.2f}' for r in runs)} s, load {os.getloadavg()[0]:.1f})"
    )
    print(
        f"  TARGET TUI drawn within 1 s of start at {count} items: {t:.2f} s: "
        f"{'ok' if t < 1 else 'NOT MET'}"
    )
    ops, mem = KDF_PRESETS["moderate"]
    kdf_t, _ = timed(lambda: keys.lock(b"x" * 32, PASS, ops, mem))
    print(f"  passphrase (Argon2id, moderate preset) {kdf_t:.2f} s, once per command, on purpose")


TUI_SCRIPT = """
import asyncio, sys, time
from pathlib import Path
from tipline.desk.tui.start import open_view  # what `tipline-desk tui` runs

async def main():
    app = open_view(Path(sys.argv[1]), sys.argv[2])
    with app.vault:
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            assert app.query_one("#inbox").option_count > 0
            # Drawn: the wall clock (for the parent) and the CPU this process used so far.
            print(time.time(), time.process_time(), flush=True)

asyncio.run(main())
"""


def tui_start(vault_dir: Path) -> float:
    """A fresh process, as `tipline-desk tui` once the passphrase is typed: imports, unlock
    (weak preset) beside them, query, first full render of the inbox. Returns the seconds from
    just before the process is started to the inbox drawn (not its exit); keeps the CPU seconds
    the process had used by then in TUI_CPU."""
    start = time.time()
    proc = subprocess.run(
        [sys.executable, "-c", TUI_SCRIPT, str(vault_dir), PASS],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    drawn, cpu = (float(x) for x in proc.stdout.split())
    TUI_CPU.append(cpu)
    return drawn - start


TUI_CPU: list[float] = []  # CPU seconds of each TUI start (load adds less to it than to the time)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument(
        "--tmp",
        type=Path,
        default=None,
        help="folder for the vaults and bundle (on the disk to measure; "
        "default: the system's temporary folder)",
    )
    args = parser.parse_args()
    if args.tmp:
        args.tmp.mkdir(parents=True, exist_ok=True)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores at the start")
    with tempfile.TemporaryDirectory(prefix="tipline-bench-", dir=args.tmp) as tmp:
        bench_import(Path(tmp), args.size_mib)
        bench_triage(Path(tmp), args.items)


if __name__ == "__main__":
    main()
