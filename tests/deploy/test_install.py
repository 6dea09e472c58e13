"""deploy/install.sh: shellcheck clean, and idempotent where it can run here: with ``--root``
it writes every file it would write (code, configuration with its generated secret, nginx,
Tor, systemd) under a folder and only prints the system commands (apt, adduser, pip,
PostgreSQL, systemctl). A second run must change nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tipline.crypto import keys
from tipline.server.config import load_config

from .conftest import DEPLOY, REPO, need


def test_shellcheck() -> None:
    done = subprocess.run(
        [
            need("shellcheck"),
            "--severity=style",
            str(DEPLOY / "install.sh"),
            str(DEPLOY / "test-in-chroot.sh"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A snapshot of the source tree, so edits elsewhere cannot change it between two runs."""
    src = tmp_path_factory.mktemp("src") / "tipline"
    subprocess.run(
        [
            "rsync",
            "-a",
            "--exclude=/.git",
            "--exclude=.venv/",
            "--exclude=node_modules/",
            "--exclude=__pycache__/",
            "--exclude=.mypy_cache/",
            "--exclude=.hypothesis/",
            f"{REPO}/",
            f"{src}/",
        ],
        check=True,
    )
    return src


@pytest.fixture
def org_key(tmp_path: Path) -> keys.OrgSecret:
    org = keys.OrgSecret.generate()
    (tmp_path / "org.pub.json").write_bytes(org.public.to_json())
    return org


def install(source: Path, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(source / "deploy" / "install.sh"), "--root", str(root), *args],
        env={**os.environ, "TIPLINE_PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=120,
    )


def changes(done: subprocess.CompletedProcess[str]) -> int:
    found = re.search(r"^install: (\d+) changes$", done.stdout, re.MULTILINE)
    assert found, done.stdout + done.stderr
    return int(found.group(1))


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every path under ``root``: its mode and a hash of its content or link target."""
    seen = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if path.is_symlink():
            what = "->" + os.readlink(path)
        elif path.is_file():
            what = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            what = "dir"
        seen[str(path.relative_to(root))] = (st.st_mode, what)
    return seen


def debian(root: Path) -> None:
    """What a fresh Debian 12 with nginx and tor has where the installer writes."""
    (root / "etc/nginx/sites-enabled").mkdir(parents=True)
    (root / "etc/nginx/sites-enabled/default").symlink_to("/etc/nginx/sites-available/default")
    (root / "etc/tor").mkdir(parents=True)
    (root / "etc/tor/torrc").write_text("## Debian's torrc, all comments\n")


def test_install_twice_changes_nothing(
    source: Path, tmp_path: Path, org_key: keys.OrgSecret
) -> None:
    root = tmp_path / "root"
    debian(root)
    args = ("--org-key", str(tmp_path / "org.pub.json"), "--database", "sqlite")
    first = install(source, root, *args)
    assert first.returncode == 0, first.stderr
    assert changes(first) > 10
    assert org_key.public.fingerprint in first.stdout
    after_first = snapshot(root)
    second = install(source, root, *args)
    assert second.returncode == 0, second.stderr
    assert changes(second) == 0, second.stdout
    assert snapshot(root) == after_first

    config = root / "etc/tipline/tipline.toml"
    assert config.stat().st_mode & 0o777 == 0o600
    assert (root / "etc/tipline").stat().st_mode & 0o777 == 0o750
    settings = tomllib.loads(config.read_text())
    assert len(settings["SECRET_KEY"]) >= 64
    assert settings["DATABASE_URL"] == "sqlite:////var/lib/tipline/tipline.db"
    assert settings["LIMITS_STORAGE"] == "redis+unix:///run/tipline-redis/redis.sock"
    redis_conf = root / "etc/tipline/redis.conf"
    assert redis_conf.read_bytes() == (DEPLOY / "redis/tipline-redis.conf").read_bytes()
    assert redis_conf.stat().st_mode & 0o777 == 0o640
    assert "redis-server" in first.stdout  # among the packages it would install
    assert "systemctl disable --now redis-server.service" in first.stdout
    # The app reads what the installer wrote.
    os.environ["TIPLINE_CONFIG_FILE"] = str(config)
    try:
        loaded = load_config({"DATA_DIR": str(tmp_path / "data")})
    finally:
        del os.environ["TIPLINE_CONFIG_FILE"]
    assert loaded["ORG_PUBLIC_KEY_BYTES"] == org_key.public.public_key
    # The shipped files are what got installed; Debian's own are set aside, not lost.
    assert (root / "etc/nginx/sites-available/tipline.conf").read_text() == (
        DEPLOY / "nginx/tipline.conf"
    ).read_text()
    assert os.readlink(root / "etc/nginx/sites-enabled/tipline.conf") == (
        "/etc/nginx/sites-available/tipline.conf"
    )
    assert not (root / "etc/nginx/sites-enabled/default").is_symlink()
    assert (root / "etc/tor/torrc").read_text() == (DEPLOY / "tor/torrc").read_text()
    assert "Debian's torrc" in (root / "etc/tor/torrc.before-tipline").read_text()
    for unit in (
        "tipline.service",
        "tipline.socket",
        "tipline-retention.timer",
        "tipline-redis.service",
    ):
        assert (root / "etc/systemd/system" / unit).read_bytes() == (
            DEPLOY / "systemd" / unit
        ).read_bytes()
    assert (root / "opt/tipline/src/deploy/install.sh").exists()
    assert (root / "opt/tipline/src/static/build/libsodium.js").exists()
    assert not (root / "opt/tipline/src/.git").exists()
    # The system commands it would have run, in order.
    order = [
        "db upgrade",
        "nginx -t",
        "tor --verify-config",
        "systemctl daemon-reload",
        "enable --now tipline.socket",
    ]
    positions = [first.stdout.index(step) for step in order]
    assert positions == sorted(positions), first.stdout


def test_an_older_config_gets_the_shared_limits_store(
    source: Path, tmp_path: Path, org_key: keys.OrgSecret
) -> None:
    root = tmp_path / "root"
    debian(root)
    args = ("--org-key", str(tmp_path / "org.pub.json"), "--database", "sqlite")
    assert install(source, root, *args).returncode == 0
    config = root / "etc/tipline/tipline.toml"
    older = [x for x in config.read_text().splitlines() if "LIMITS_STORAGE" not in x]
    older = [x for x in older if "counts its limits" not in x]
    config.write_text("\n".join(older) + "\n")
    again = install(source, root, *args)
    assert again.returncode == 0, again.stderr
    assert "added LIMITS_STORAGE to /etc/tipline/tipline.toml" in again.stdout
    settings = tomllib.loads(config.read_text())
    assert settings["LIMITS_STORAGE"] == "redis+unix:///run/tipline-redis/redis.sock"
    assert changes(install(source, root, *args)) == 0


def test_a_changed_limit_reaches_nginx_and_secrets_stay(
    source: Path, tmp_path: Path, org_key: keys.OrgSecret
) -> None:
    root = tmp_path / "root"
    debian(root)
    assert install(source, root, "--org-key", str(tmp_path / "org.pub.json")).returncode == 0
    config = root / "etc/tipline/tipline.toml"
    secret = tomllib.loads(config.read_text())["SECRET_KEY"]
    assert "postgresql+psycopg:///tipline?host=/var/run/postgresql" in config.read_text()
    config.write_text(config.read_text() + "MAX_SUBMISSION_SIZE = 5368709120\n")
    config.chmod(0o644)  # a careless edit: the installer puts it back
    again = install(source, root)  # the org key is already configured
    assert again.returncode == 0, again.stderr
    assert "set the mode of /etc/tipline/tipline.toml to 600" in again.stdout
    assert "wrote /etc/nginx/sites-available/tipline.conf" in again.stdout
    assert "systemctl reload-or-restart nginx" in again.stdout
    assert changes(again) == 2
    site = (root / "etc/nginx/sites-available/tipline.conf").read_text()
    assert f"client_max_body_size {5368709120 + (2 << 20)};" in site
    assert config.stat().st_mode & 0o777 == 0o600
    assert tomllib.loads(config.read_text())["SECRET_KEY"] == secret
    assert changes(install(source, root)) == 0


def test_install_refuses_another_org_key(
    source: Path, tmp_path: Path, org_key: keys.OrgSecret
) -> None:
    root = tmp_path / "root"
    debian(root)
    assert install(source, root, "--org-key", str(tmp_path / "org.pub.json")).returncode == 0
    before = snapshot(root)
    other = tmp_path / "other.pub.json"
    other.write_bytes(keys.OrgSecret.generate().public.to_json())
    refused = install(source, root, "--org-key", str(other))
    assert refused.returncode == 1 and "names another org key" in refused.stderr
    assert snapshot(root) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "the first run needs --org-key"),
        (("--org-key", "/nonexistent.json"), "/nonexistent.json"),
        (("--database", "mysql"), "postgresql or sqlite"),
    ],
)
def test_install_explains_what_is_missing(
    source: Path, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    done = install(source, tmp_path / "root", *args)
    assert done.returncode != 0 and message in done.stderr
    assert not (tmp_path / "root/etc/tipline/tipline.toml").exists()


def test_install_refuses_a_recipient_key_as_org_key(source: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "alice.pub.json"
    wrong.write_bytes(keys.RecipientSecret.generate("Alice").public.to_json())
    done = install(source, tmp_path / "root", "--org-key", str(wrong))
    assert done.returncode != 0 and "not an org public key" in done.stderr
