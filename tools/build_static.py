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

Last, every file the source pages load (the page scripts, the crypto Worker and its modules,
libsodium.js, the word list, the stylesheet) is copied to ``static/build/assets/`` under a
content-addressed name, ``NAME.HASH.EXT``, with every relative reference between them (imports,
``new URL(..., import.meta.url)``) rewritten to the referenced file's hashed name, leaves first,
so a file's hash covers everything it loads. ``static/build/assets.json`` maps each source path
to its hashed name; the server serves these files with a year-long immutable cache (a new build
is a new name) and every page keeps ``no-store`` (docs/BROWSER.md, "Loading fast over Tor").
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tipline.wordlist import wordlist_text  # noqa: E402

NODE_MODULES = ROOT / "node_modules"
STATIC = ROOT / "static"
OUT = STATIC / "build"
ASSETS = OUT / "assets"
MANIFEST = OUT / "assets.json"
# What the source pages load, relative to static/: the entry points; everything they reference
# by a relative path is hashed with them.
ENTRY_POINTS = (
    "js/source/submit.js",
    "js/source/replies.js",
    "css/source.css",
)
# A relative reference between these files: a quoted ./ or ../ path to a .js or .txt file.
REFERENCE = re.compile(r"""(["'])(\.{1,2}/[^"'\s]+\.(?:js|txt))\1""")
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
    return [*outputs, *hash_assets()]


def hash_assets() -> list[Path]:
    """Copy the entry points and everything they reference into ``assets/`` under hashed
    names, write ``assets.json``; returns the paths written.
    """
    names: dict[Path, str] = {}  # source file -> hashed file name

    def hashed(path: Path, seen: tuple[Path, ...] = ()) -> str:
        if path in names:
            return names[path]
        if path in seen:
            fail(f"{path.relative_to(STATIC)} is part of an import cycle")
        if not path.is_file():
            fail(f"{path.relative_to(STATIC)} is referenced but missing")
        data = path.read_bytes()
        if path.suffix in (".js", ".css"):
            text = data.decode("utf-8")

            def rewrite(match: re.Match[str]) -> str:
                target = (path.parent / match.group(2)).resolve()
                return f"{match.group(1)}./{hashed(target, (*seen, path))}{match.group(1)}"

            data = REFERENCE.sub(rewrite, text).encode("utf-8")
        digest = hashlib.sha256(data).hexdigest()[:20]
        name = f"{path.stem}.{digest}{path.suffix}"
        if any(n.split(".")[0] == path.stem for n in names.values()):
            fail(f"two assets are named {path.stem}: hashed names must stay unique")
        contents[name] = data
        names[path] = name
        return name

    contents: dict[str, bytes] = {}
    mapping = {entry: f"assets/{hashed((STATIC / entry).resolve())}" for entry in ENTRY_POINTS}
    for path, name in names.items():
        mapping[str(path.relative_to(STATIC.resolve()))] = f"assets/{name}"
    if ASSETS.exists():
        shutil.rmtree(ASSETS)
    ASSETS.mkdir(parents=True)
    written = []
    for name, data in contents.items():
        write(ASSETS / name, data)
        written.append(ASSETS / name)
    write(MANIFEST, json.dumps(dict(sorted(mapping.items())), indent=1).encode("utf-8"))
    return [*written, MANIFEST]


def main() -> None:
    """Build and say what was written."""
    for path in build():
        print(f"build_static: wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
