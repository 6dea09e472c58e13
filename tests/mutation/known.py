"""Re-apply known mutations, each a real way to break a promise, and check the suite catches each.

    .venv/bin/python tests/mutation/known.py [NAME ...]      (make mutation-known)

Each mutation is a small diff (shown when it runs) to one file, with the targeted tests that must
fail once it is applied. The repository is copied to a temporary folder and mutated there (never
in place), one mutation at a time; the copy's ``tipline`` comes first on ``PYTHONPATH``. A mutation
the tests do not catch is a survivor: the command lists them and exits 1. Survivors that are
accepted, with the reason, are in tests/mutation/survivors.md.
"""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTEST = [
    sys.executable,
    "-m",
    "pytest",
    "-q",
    "-x",
    "-p",
    "no:cacheprovider",
    "-W",
    "ignore::pytest.PytestUnraisableExceptionWarning",
]
NODE = ["node", "--test"]
VECTORS_PY = [*PYTEST, "tests/test_vectors.py"]
VECTORS_JS = [*NODE, "tests/js/vectors.test.mjs"]
ARCH = [*PYTEST, "tests/test_architecture.py", "-k", "not planted"]
NEUTRAL = [*PYTEST, "tests/desk/test_text.py", "-k", "every_format"]
PRIVACY = [*PYTEST, "tests/server/test_privacy.py", "-k", "sqlite and distinctive"]


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    old: str
    new: str
    command: list[str]
    nth: int | None = None  # which occurrence of ``old`` when it is not unique (the JS reader
    # has a whole-envelope and a streaming twin of some checks)

    def apply(self, text: str) -> str:
        at = -1
        for _ in range((self.nth or 0) + 1):
            at = text.index(self.old, at + 1)
        if self.nth is None and text.count(self.old) != 1:
            raise AssertionError(f"{self.name}: the old text is not unique in {self.path}")
        return text[:at] + self.new + text[at + len(self.old) :]


M = Mutation
MUTATIONS = [
    # Finding 5: envelope checks, each reached by its own vector (Python).
    M(
        "py-trailing-data",
        "tipline/crypto/envelope.py",
        "if pos < len(block) or len(next(blocks)):",
        "if False:",
        VECTORS_PY,
    ),
    M(
        "py-non-final-tag",
        "tipline/crypto/envelope.py",
        "if tag != TAG_MESSAGE or size < _FULL:",
        "if size < _FULL:",
        VECTORS_PY,
    ),
    M(
        "py-inner-manifest-bound",
        "tipline/crypto/envelope.py",
        "if not 1 <= size <= MAX_INNER_MANIFEST:",
        "if False:",
        VECTORS_PY,
    ),
    M(
        "py-padded-length",
        "tipline/crypto/envelope.py",
        "if not plain.at_end():",
        "if False:",
        VECTORS_PY,
    ),
    M(
        "py-padding-zero",
        "tipline/crypto/envelope.py",
        "if piece != _ZEROS[: len(piece)]:",
        "if False:",
        VECTORS_PY,
    ),
    M(
        "py-chunk-size-byte",
        "tipline/crypto/format.py",
        "if prefix[9] != CHUNK_LOG2:",
        "if False:",
        VECTORS_PY,
    ),
    M(
        "py-final-on-full-chunk",
        "tipline/crypto/envelope.py",
        "if tag == TAG_FINAL:",
        "if tag == TAG_FINAL and size < _FULL:",
        [*PYTEST, "tests/crypto/test_envelope.py", "-k", "chunk_boundaries"],
    ),
    M(
        "py-manifest-other-org",
        "tipline/crypto/manifest.py",
        "if body.org_public_key != org_public_key:",
        "if False:",
        VECTORS_PY,
    ),
    # The same checks in the browser's reader (whole envelope, then streamed).
    M(
        "js-trailing-data",
        "static/js/envelope.js",
        "if (pos < data.length) throw",
        "if (false) throw",
        VECTORS_JS,
    ),
    M(
        "js-trailing-data-stream",
        "static/js/envelope.js",
        "if ((await reader.read(1)).length) throw",
        "if (false) throw",
        VECTORS_JS,
    ),
    M(
        "js-non-final-tag",
        "static/js/envelope.js",
        "if (result.tag !== TAG_MESSAGE || piece.length < full)",
        "if (piece.length < full)",
        VECTORS_JS,
        nth=0,
    ),
    M(
        "js-non-final-tag-stream",
        "static/js/envelope.js",
        "if (result.tag !== TAG_MESSAGE || piece.length < full)",
        "if (piece.length < full)",
        VECTORS_JS,
        nth=1,
    ),
    M(
        "js-inner-manifest-bound",
        "static/js/envelope.js",
        "if (size < 1 || size > MAX_INNER_MANIFEST) {",
        "if (false) {",
        VECTORS_JS,
        nth=0,
    ),
    M(
        "js-inner-manifest-bound-stream",
        "static/js/envelope.js",
        "if (size < 1 || size > MAX_INNER_MANIFEST) {",
        "if (false) {",
        VECTORS_JS,
        nth=1,
    ),
    M(
        "js-padded-length",
        "static/js/envelope.js",
        "if (!plain.atEnd()) throw",
        "if (false) throw",
        VECTORS_JS,
    ),
    M(
        "js-padded-length-stream",
        "static/js/envelope.js",
        "if (!(await plain.atEnd())) {",
        "if (false) {",
        VECTORS_JS,
    ),
    M(
        "js-chunk-size-byte",
        "static/js/envelope.js",
        "if (data[9] !== CHUNK_LOG2)",
        "if (false)",
        VECTORS_JS,
    ),
    M(
        "js-manifest-other-org",
        "static/js/manifest.js",
        "if (!equal(manifest.orgPublicKey, orgPublicKey)) throw",
        "if (false) throw",
        VECTORS_JS,
    ),
    # Finding 4: the import rules (each was once green).
    M(
        "server-absolute-open-envelope",
        "tipline/server/source_read.py",
        "from .. import source_replies\n",
        "from .. import source_replies\nfrom tipline.crypto.envelope import open_envelope\n",
        ARCH,
    ),
    M(
        "server-attribute-open-envelope",
        "tipline/server/source_read.py",
        "from .. import source_replies\n",
        "from .. import source_replies\nfrom ..crypto import envelope\n"
        "_O = envelope.open_envelope\n",
        ARCH,
    ),
    M(
        "server-importlib",
        "tipline/server/source_read.py",
        "from .. import source_replies\n",
        "from .. import source_replies\nimport importlib\n",
        ARCH,
    ),
    M(
        "server-reexport-through-source-replies",
        "tipline/server/source_read.py",
        "from .. import source_replies\n",
        "from .. import source_replies\n_O = source_replies.open_envelope\n",
        ARCH,
    ),
    M(
        "server-raw-seal-open",
        "tipline/server/source_read.py",
        "from .. import source_replies\n",
        "from .. import source_replies\nimport nacl.bindings\n"
        "_O = nacl.bindings.crypto_box_seal_open\n",
        ARCH,
    ),
    M(
        "desk-_socket",
        "tipline/desk/text.py",
        "from __future__ import annotations\n",
        "from __future__ import annotations\n\nimport _socket\n",
        ARCH,
    ),
    # Finding 6: privacy.
    M(
        "argon2id-cost-lowered",
        "tipline/server/accounts.py",
        "OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE",
        "OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_MIN",
        [*PYTEST, "tests/server/test_accounts.py", "-k", "real_cost"],
    ),
    M(
        "limiter-keyed-on-address",
        "tipline/server/limits.py",
        'return hashlib.blake2b(who.encode("utf-8"), digest_size=8).hexdigest() if who else "all"',
        'return __import__("flask").request.remote_addr or "all"',
        PRIVACY,
    ),
    M(
        "api-logs-the-referer",
        "tipline/server/api.py",
        'bp = Blueprint("api", __name__, url_prefix="/api/source")\n',
        'bp = Blueprint("api", __name__, url_prefix="/api/source")\n'
        'bp.before_request(lambda: current_app.logger.debug("from %s", request.referrer))\n',
        PRIVACY,
    ),
    M(
        "journalist-api-writes-the-agent",
        "tipline/server/journalist_api.py",
        'bp = Blueprint("journalist_api", __name__, url_prefix="/api/journalist")\n',
        'bp = Blueprint("journalist_api", __name__, url_prefix="/api/journalist")\n'
        'bp.before_request(lambda: print(__import__("flask").request.user_agent.string))\n',
        PRIVACY,
    ),
    # The desk's neutraliser (issue 11, class 3).
    M(
        "neutraliser-three-character-denylist",
        "tipline/desk/text.py",
        "elif unicodedata.category(ch) in _HIDDEN:",
        'elif ch in "\\x1b\\r\\u202e":',
        NEUTRAL,
    ),
    M(
        "neutraliser-without-format-characters",
        "tipline/desk/text.py",
        '_HIDDEN = frozenset({"Cc", "Cf", ',
        '_HIDDEN = frozenset({"Cc", ',
        NEUTRAL,
    ),
    M(
        "bundle-lazy-import",
        "tipline/bundle.py",
        "from __future__ import annotations\n",
        "from __future__ import annotations\n\n\ndef _later() -> object:\n"
        "    from .crypto.envelope import open_envelope\n\n    return open_envelope\n",
        ARCH,
    ),
]


def copy_tree(dst: Path) -> None:
    for name in ("tipline", "tests", "static", "templates", "translations", "migrations"):
        shutil.copytree(
            ROOT / name,
            dst / name,
            symlinks=True,
            ignore=shutil.ignore_patterns("__pycache__", ".hypothesis"),
        )
    for path in [ROOT / "pyproject.toml", ROOT / "package.json", *ROOT.glob("*.ini")]:
        shutil.copy2(path, dst / path.name)
    (dst / "node_modules").symlink_to(ROOT / "node_modules")


def run(mutation: Mutation, tree: Path) -> tuple[bool, float, str]:
    """Apply, run the tests, restore; True if the tests failed (the mutant was killed)."""
    target = tree / mutation.path
    original = target.read_text()
    mutated = mutation.apply(original)
    diff = "".join(
        difflib.unified_diff(
            original.splitlines(True),
            mutated.splitlines(True),
            f"a/{mutation.path}",
            f"b/{mutation.path}",
            n=0,
        )
    )
    target.write_text(mutated)
    started = time.monotonic()
    try:
        env = {**os.environ, "PYTHONPATH": str(tree)}
        result = subprocess.run(
            mutation.command, cwd=tree, env=env, capture_output=True, text=True, timeout=600
        )
    finally:
        target.write_text(original)
    return result.returncode != 0, time.monotonic() - started, diff


def main(names: list[str]) -> int:
    chosen = [m for m in MUTATIONS if not names or m.name in names]
    unknown = set(names) - {m.name for m in MUTATIONS}
    if unknown:
        print(f"known: no mutation named {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    survivors = []
    with tempfile.TemporaryDirectory(prefix="tipline-mutants-") as folder:
        tree = Path(folder)
        copy_tree(tree)
        # The unmutated copy must pass every command, or a "kill" would prove nothing.
        for command in {tuple(m.command) for m in chosen}:
            env = {**os.environ, "PYTHONPATH": str(tree)}
            clean = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
            if clean.returncode != 0:
                print(f"known: the unmutated tree fails {' '.join(command)}:")
                print(clean.stdout[-2000:])
                return 2
        for mutation in chosen:
            killed, seconds, diff = run(mutation, tree)
            print(f"{'killed ' if killed else 'SURVIVED'} {mutation.name} ({seconds:.1f} s)")
            print("    " + diff.rstrip().replace("\n", "\n    "))
            if not killed:
                survivors.append(mutation.name)
    print(f"known mutations: {len(chosen) - len(survivors)} of {len(chosen)} killed")
    if survivors:
        print("survivors: " + ", ".join(survivors))
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
