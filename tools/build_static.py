"""Build what the browser side of the crypto core loads from ``static/build/`` (never committed).

    python tools/build_static.py

Copies libsodium.js's ESM builds (``libsodium-wrappers`` and the raw ``libsodium`` it imports,
pinned in package.json/package-lock.json and installed by ``npm ci``) from node_modules, rewriting
the wrappers' bare ``import ... from "libsodium"`` to a relative path so a browser (which has no
package resolution) and node load the same two files. Both are saved as ``.js`` so every server
sends them with a JavaScript MIME type. Then copies the codename word list from the xkcdpass
package (docs/SPEC.md §5.1); the browser checks its digest before it uses it.

Only the WebAssembly build exists in these files: libsodium.js 0.8 embeds its WebAssembly module
and has no asm.js fallback, which is what the CSP ``script-src 'self' 'wasm-unsafe-eval'`` allows.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tipline.wordlist import wordlist_text  # noqa: E402

NODE_MODULES = ROOT / "node_modules"
OUT = ROOT / "static" / "build"
WRAPPERS_VERSION = "0.8.4"
# The only bare import in the wrappers' ESM build, as the minifier writes it.
BARE_IMPORT = re.compile(r"""(\bimport\s*\w+\s*from\s*)(["'])libsodium\2""")


def fail(message: str) -> NoReturn:
    """One line on stderr and a non-zero exit, like every Tipline tool."""
    print(f"build_static: {message}", file=sys.stderr)
    raise SystemExit(1)


def package_file(package: str, relative: str) -> Path:
    """A file of an installed npm package, checking that the package is the pinned version."""
    folder = NODE_MODULES / package
    try:
        meta = json.loads((folder / "package.json").read_text("utf-8"))
    except (OSError, ValueError):
        fail(f"{package} is not installed: run `npm ci` (or `make setup`)")
    if meta.get("version") != WRAPPERS_VERSION:
        fail(f"{package} is {meta.get('version')}, but {WRAPPERS_VERSION} is pinned: run `npm ci`")
    path = folder / relative
    if not path.is_file():
        fail(f"{path} is missing: run `npm ci`")
    return path


def write(path: Path, data: bytes) -> None:
    """Write through a temporary name, so a half-built file is never served."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def build() -> list[Path]:
    """Write every file of ``static/build/``; returns their paths."""
    OUT.mkdir(parents=True, exist_ok=True)
    wrappers = package_file(
        "libsodium-wrappers", "dist/modules-esm/libsodium-wrappers.mjs"
    ).read_text("utf-8")
    wrappers, count = BARE_IMPORT.subn(r"\1\2./libsodium.js\2", wrappers)
    if count != 1:
        fail(f"expected one import of libsodium in libsodium-wrappers, found {count}")
    if re.search(r"""from\s*["'][^./]""", wrappers):
        fail("libsodium-wrappers has another bare import this build does not rewrite")
    raw = package_file("libsodium", "dist/modules-esm/libsodium.mjs").read_bytes()
    if b"WebAssembly.instantiate" not in raw:
        fail("the libsodium ESM build is not the WebAssembly build")
    outputs = {
        OUT / "libsodium-wrappers.js": wrappers.encode("utf-8"),
        OUT / "libsodium.js": raw,
        OUT / "eff-long.txt": wordlist_text().encode("utf-8"),
    }
    for path, data in outputs.items():
        write(path, data)
    return list(outputs)


def main() -> None:
    """Build and say what was written."""
    for path in build():
        print(f"build_static: wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
