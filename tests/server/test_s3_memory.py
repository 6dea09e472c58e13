"""The S3 client's slimmed botocore data (tipline/server/s3model.py) and what it is for: the
files shipped are the ones the installed botocore makes, and a client made from them parses
less than botocore's own (bench/s3.py measures the worker's RSS). The store's operations
themselves run against SeaweedFS in test_s3.py, all through this client.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tipline.server import s3model

MEASURE = """
import sys
def rss():
    return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0])
import botocore.session
from tipline.server import s3store
before = rss()
if sys.argv[1] == "slim":
    s3store._client("http://127.0.0.1:9", "k", "s", "us-east-1")
else:
    botocore.session.get_session().create_client(
        "s3", endpoint_url="http://127.0.0.1:9", aws_access_key_id="k",
        aws_secret_access_key="s", region_name="us-east-1",
    )
print(rss() - before)
"""


def test_the_shipped_data_is_what_the_installed_botocore_makes(tmp_path: Path) -> None:
    """Control: leaving one operation out makes different files (the comparison can fail)."""
    made = s3model.build(s3model.botocore_data())
    for relative, content in made.items():
        assert (s3model.DATA / relative).read_bytes() == content, (
            f"{relative} is stale: run python -m tipline.server.s3model"
        )
    fewer = s3model.build(s3model.botocore_data(), s3model.OPERATIONS[1:])
    assert fewer[s3model.SERVICE] != made[s3model.SERVICE]
    service = json.loads(made[s3model.SERVICE])
    assert sorted(service["operations"]) == sorted(s3model.OPERATIONS)
    assert "documentation" not in json.dumps(service["shapes"])


def test_every_call_the_store_makes_is_in_the_model() -> None:
    """Every ``self.s3.<call>`` in s3store.py names an operation the slim model has (a call
    it lacks would fail only when reached). Control: the scan finds the calls it should."""
    source = (Path(s3model.__file__).with_name("s3store.py")).read_text()
    calls = set(re.findall(r"self\.s3\.([a-z_]+)\(", source))
    calls |= set(re.findall(r'get_paginator\("([a-z_0-9]+)"\)', source))
    assert {"upload_part", "complete_multipart_upload", "list_objects_v2"} <= calls
    names = {re.sub(r"(?<!^)(?=[A-Z])", "_", op).lower() for op in s3model.OPERATIONS}
    assert calls - {"get_paginator"} <= names, calls - names


def test_a_slim_client_takes_less_memory() -> None:
    """Each in a fresh interpreter: the slim client's RSS growth is well under the full one's.
    Control: the full client is measured the same way, in the same run."""
    growth = {}
    for kind in ("slim", "full"):
        done = subprocess.run(
            [sys.executable, "-c", MEASURE, kind], capture_output=True, text=True, check=True
        )
        growth[kind] = int(done.stdout.strip())
    assert growth["slim"] < growth["full"] - 6 * 1024, growth  # KiB: at least 6 MiB less
