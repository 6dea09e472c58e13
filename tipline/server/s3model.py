"""The slice of botocore's data the S3 blob store loads: the S3 operations it calls (with the
shapes they use, documentation left out) and botocore's endpoint table cut to S3.

botocore parses its whole S3 model and its table of every AWS endpoint into every process that
makes a client: about 12 MiB of each app worker's memory (bench/s3.py; docs/DEPLOY.md "Blobs in
S3"). ``s3store.S3BlobStore`` puts ``s3data/`` first in its session's search path, so these
smaller files are what it parses; the rest (paginators, retry rules) still come from botocore.

The files are made from the installed botocore by ``python -m tipline.server.s3model`` and a
test checks they still match it (tests/server/test_s3_memory.py): after upgrading botocore in
constraints.txt, run that and commit the result.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).with_name("s3data")
SERVICE = Path("s3") / "2006-03-01" / "service-2.json"
ENDPOINTS = Path("endpoints.json")
# Every S3 call the app and its tests' helpers make through S3BlobStore.s3.
OPERATIONS = (
    "AbortMultipartUpload",
    "CompleteMultipartUpload",
    "CopyObject",
    "CreateBucket",
    "CreateMultipartUpload",
    "DeleteObject",
    "DeleteObjects",
    "GetObject",
    "HeadBucket",
    "HeadObject",
    "ListMultipartUploads",
    "ListObjectsV2",
    "ListParts",
    "PutObject",
    "UploadPart",
)
_PROSE = ("documentation", "documentationUrl", "examples")


def _without_prose(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_prose(v) for k, v in node.items() if k not in _PROSE}
    if isinstance(node, list):
        return [_without_prose(v) for v in node]
    return node


def _shapes_used(model: dict[str, Any], roots: list[Any]) -> set[str]:
    """Every shape reachable from ``roots`` (operations' inputs, outputs and errors)."""
    found: set[str] = set()
    todo = list(roots)
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            name = node.get("shape")
            if isinstance(name, str) and name not in found:
                found.add(name)
                todo.append(model["shapes"][name])
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    return found


def build(botocore_data: Path, operations: tuple[str, ...] = OPERATIONS) -> dict[Path, bytes]:
    """The files of ``s3data/`` made from botocore's data folder."""
    model = json.loads(gzip.decompress((botocore_data / f"{SERVICE}.gz").read_bytes()))
    ops = {name: model["operations"][name] for name in operations}
    shapes = _shapes_used(model, list(ops.values()))
    service = {  # prose dropped from operations and shapes only (botocore reads some elsewhere)
        **model,
        "operations": _without_prose(ops),
        "shapes": _without_prose({k: model["shapes"][k] for k in sorted(shapes)}),
    }
    table = json.loads((botocore_data / ENDPOINTS).read_bytes())
    for partition in table["partitions"]:
        partition["services"] = {k: v for k, v in partition["services"].items() if k == "s3"}
    return {
        SERVICE: json.dumps(service, sort_keys=True, separators=(",", ":")).encode() + b"\n",
        ENDPOINTS: json.dumps(table, sort_keys=True, separators=(",", ":")).encode() + b"\n",
    }


def botocore_data() -> Path:
    """The installed botocore's data folder."""
    import botocore

    return Path(botocore.__file__).with_name("data")


def main() -> None:
    """Write ``s3data/`` from the installed botocore."""
    for relative, content in build(botocore_data()).items():
        target = DATA / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        print(f"wrote {target} ({len(content)} bytes)")


if __name__ == "__main__":
    main()
