"""Onionbalance for the source onion (docs/DEPLOY.md "Several app servers behind
Onionbalance"), rendered by deploy/install.sh in ``--root`` mode for a frontend and two app
servers, and checked by the programs that will read the files: ``tor --verify-config`` (which
also reads each backend's ob_config) and a real, offline Tor start on each backend, and
Debian's Onionbalance's own configuration loader (its address checks, and its loading of the
master key). The single-box install stays exactly as it was.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tipline.crypto import keys

from .conftest import DEPLOY, REPO, need
from .test_configs import run_tor_until, tor_command
from .test_install import changes, install

sys.path.insert(0, str(DEPLOY))
import render

DEBIAN_PYTHON = "/usr/bin/python3"  # the Python Debian's onionbalance package runs on
ONION = re.compile(r"[a-z2-7]{56}\.onion")


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir()}


def local_torrc(torrc: Path, workdir: Path) -> Path:
    """An installed torrc with /var/lib/tor/ moved under ``workdir`` (and the data folder)."""
    text = torrc.read_text()
    local = workdir / "torrc"
    local.write_text(text.replace("/var/lib/tor/", f"{workdir}/"))
    (workdir / "data").mkdir(mode=0o700, exist_ok=True)
    return local


def verify(workdir: Path, torrc: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        tor_command(workdir, torrc, "--verify-config"), capture_output=True, text=True
    )


def onionbalance_loads(config: Path) -> subprocess.CompletedProcess[str]:
    """Debian's Onionbalance reads ``config`` as it does at start (YAML through Debian's
    PyYAML, its ConfigError checks, the backends' addresses through stem) and loads the
    service key: prints what it read (JSON) and then the key's onion address."""
    code = """
import json, sys
from onionbalance.hs_v3 import onionbalance, service
ob = onionbalance.Onionbalance()
ob.config_path = sys.argv[1]
data = ob.load_config_file()
print(json.dumps(data))
(svc,) = data["services"]
key, address = service.OnionbalanceService._load_service_keys(
    service.OnionbalanceService.__new__(service.OnionbalanceService), svc, sys.argv[1])
print(address)
"""
    done = subprocess.run(
        [DEBIAN_PYTHON, "-c", code, str(config)], capture_output=True, text=True, timeout=60
    )
    if "No module named 'onionbalance'" in done.stderr:
        pytest.fail("Debian's onionbalance is missing: apt-get install onionbalance")
    return done


@dataclass
class Cluster:
    frontend: Path
    backends: list[Path]
    master: str
    addresses: list[str]  # each backend's own source onion, as its Tor made it
    first_frontend: subprocess.CompletedProcess[str]
    last_frontend: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    """A frontend and two app servers installed in the order docs/DEPLOY.md gives: the
    frontend (its key, no backends yet), each app server as a backend of the frontend's
    address (the second without the journalist onion), their Tors started offline to make
    their own source onions, then the frontend again with those."""
    need("tor")
    base = tmp_path_factory.mktemp("ob")
    src = base / "src"
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
    org = base / "org.pub.json"
    org.write_bytes(keys.OrgSecret.generate().public.to_json())
    frontend = base / "frontend"
    first = install(src, frontend, "--onionbalance-frontend")
    assert first.returncode == 0, first.stderr
    found = re.search(r"^Source onion \(publish it\): +http://(\S+)/$", first.stdout, re.M)
    assert found, first.stdout
    master = found.group(1)
    backends, addresses = [], []
    for i, extra in enumerate([(), ("--no-journalist-onion",)]):
        root = base / f"app{i + 1}"
        done = install(
            src, root, "--org-key", str(org), "--database", "sqlite",
            "--onionbalance-backend", master, *extra,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert f"served through Onionbalance): http://{master}/" in done.stdout
        again = install(
            src, root, "--org-key", str(org), "--database", "sqlite",
            "--onionbalance-backend", master, *extra,
        )  # fmt: skip
        assert changes(again) == 0, again.stdout
        # Its Tor, offline, with the installed torrc and ob_config: it makes the onion's keys.
        work = base / f"tor{i + 1}"
        work.mkdir()
        (work / "tipline-source").mkdir(mode=0o700)
        ob_config = root / "var/lib/tor/tipline-source/ob_config"
        (work / "tipline-source/ob_config").write_bytes(ob_config.read_bytes())
        torrc = local_torrc(root / "etc/tor/torrc", work)
        log = run_tor_until(work, torrc, "hs_service_load_all_keys", work / "tor.log")
        assert "[warn] OnionBalance" not in log
        hostname = work / "tipline-source/hostname"
        for _ in range(50):
            if hostname.exists():
                break
            time.sleep(0.1)
        addresses.append(hostname.read_text().strip())
        backends.append(root)
    pairs = [x for a in addresses for x in ("--backend", a)]
    last = install(src, frontend, "--onionbalance-frontend", *pairs)
    assert last.returncode == 0, last.stderr
    again = install(src, frontend, "--onionbalance-frontend", *pairs)
    assert changes(again) == 0, again.stdout
    return Cluster(frontend, backends, master, addresses, first, last)


def test_the_frontend_holds_the_source_onion_key(cluster: Cluster) -> None:
    assert ONION.fullmatch(cluster.master)
    key = cluster.frontend / "etc/onionbalance/private_keys/tipline-source.key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert (key.parent.stat().st_mode & 0o777) == 0o750
    assert render.key_address(str(key)) == cluster.master
    # The owner is set on a real install (not in --root, where the users do not exist).
    install_sh = (DEPLOY / "install.sh").read_text()
    assert 'put "$TMP/master.key" "$OB_KEY" 0600 onionbalance:onionbalance' in install_sh
    assert 'own "$OB_KEY" onionbalance:onionbalance' in install_sh
    # The first run, before any backend: a key, no Onionbalance configuration to start.
    assert "no backends yet" in cluster.first_frontend.stdout
    assert "enable --now onionbalance.service" not in cluster.first_frontend.stdout
    assert "enable --now onionbalance.service" in cluster.last_frontend.stdout
    # The key stays what it was when the backends are added.
    assert f"http://{cluster.master}/" in cluster.last_frontend.stdout


def test_onionbalance_reads_the_rendered_config(cluster: Cluster, tmp_path: Path) -> None:
    config = cluster.frontend / "etc/onionbalance/config.yaml"
    assert config.stat().st_mode & 0o777 == 0o640
    key = "/etc/onionbalance/private_keys/tipline-source.key"
    assert f"  - key: {key}\n" in config.read_text()
    # Onionbalance's own loader, with the key path moved under the --root folder.
    here = tmp_path / "config.yaml"
    here.write_text(config.read_text().replace(key, str(cluster.frontend / key.lstrip("/"))))
    done = onionbalance_loads(here)
    assert done.returncode == 0, done.stderr
    data, address = done.stdout.splitlines()
    (service,) = json.loads(data)["services"]
    assert [i["address"] for i in service["instances"]] == cluster.addresses
    assert len(set(cluster.addresses)) == 2 and cluster.master not in cluster.addresses
    assert address == cluster.master


def test_onionbalance_refuses_a_bad_backend_address(cluster: Cluster, tmp_path: Path) -> None:
    """The check above can fail: one wrong letter in a backend's address is refused."""
    config = cluster.frontend / "etc/onionbalance/config.yaml"
    key = cluster.frontend / "etc/onionbalance/private_keys/tipline-source.key"
    good = cluster.addresses[0]
    bad = ("b" if good[0] != "b" else "c") + good[1:]
    here = tmp_path / "config.yaml"
    text = config.read_text().replace("/etc/onionbalance/private_keys/tipline-source.key", str(key))
    here.write_text(text.replace(good, bad))
    done = onionbalance_loads(here)
    assert done.returncode != 0 and "Cannot load instance with address" in done.stderr
    # The installer refuses it before Onionbalance could.
    with pytest.raises(SystemExit, match="not a v3 onion address"):
        render.render_onionbalance(str(key), cluster.master, [bad, cluster.addresses[1]])
    with pytest.raises(SystemExit, match="frontend's own address"):
        render.render_onionbalance(str(key), cluster.master, [cluster.master])
    with pytest.raises(SystemExit, match="named twice"):
        render.render_onionbalance(str(key), cluster.master, [good, good])
    many = [render.onion_address(bytes([i]) * 32) for i in range(9)]
    with pytest.raises(SystemExit, match="at most 8 backends"):
        render.render_onionbalance(str(key), cluster.master, many)
    assert "address" in render.render_onionbalance(str(key), cluster.master, many[:8])


def test_each_backend_torrc_passes_tor_verify_config(cluster: Cluster, tmp_path: Path) -> None:
    for i, root in enumerate(cluster.backends):
        work = tmp_path / f"b{i}"
        (work / "tipline-source").mkdir(parents=True, mode=0o700)
        ob_config = root / "var/lib/tor/tipline-source/ob_config"
        assert ob_config.read_text() == f"MasterOnionAddress {cluster.master}\n"
        assert ob_config.stat().st_mode & 0o777 == 0o600
        (work / "tipline-source/ob_config").write_bytes(ob_config.read_bytes())
        torrc = local_torrc(root / "etc/tor/torrc", work)
        done = verify(work, torrc)
        assert done.returncode == 0, done.stdout
        assert "Configuration was valid" in done.stdout
        # Control: Tor reads the ob_config: with a wrong master address it refuses.
        (work / "tipline-source/ob_config").write_text("MasterOnionAddress x.onion\n")
        refused = verify(work, torrc)
        assert refused.returncode != 0 and "MasterOnionAddress" in refused.stdout


def test_the_frontend_torrc_passes_tor_verify_config(cluster: Cluster, tmp_path: Path) -> None:
    torrc = local_torrc(cluster.frontend / "etc/tor/torrc", tmp_path)
    assert torrc.read_text() == (DEPLOY / "tor/torrc-onionbalance").read_text()
    assert "HiddenServiceDir" not in torrc.read_text()  # it serves no onion itself
    done = verify(tmp_path, torrc)
    assert done.returncode == 0 and "Configuration was valid" in done.stdout, done.stdout


def blocks(torrc: Path) -> dict[str, str]:
    parts = re.split(r"(?m)^HiddenServiceDir ", torrc.read_text())[1:]
    return {p.split("\n", 1)[0]: p for p in parts}


def test_only_the_source_onion_is_balanced(cluster: Cluster) -> None:
    first, second = (blocks(root / "etc/tor/torrc") for root in cluster.backends)
    source, journalist = "/var/lib/tor/tipline-source/", "/var/lib/tor/tipline-journalist/"
    assert list(first) == [source, journalist]
    assert "HiddenServiceOnionbalanceInstance 1" in first[source]
    # The journalist onion (client authorisation, which Onionbalance does not carry) stays
    # on the first app server, as a plain onion of its own.
    assert "Onionbalance" not in first[journalist]
    assert "HiddenServicePort 80 127.0.0.1:8081" in first[journalist]
    assert list(second) == [source]
    assert "HiddenServiceOnionbalanceInstance 1" in second[source]
    assert not (cluster.backends[1] / "var/lib/tor/tipline-journalist").exists()
    assert not (cluster.backends[0] / "var/lib/tor/tipline-journalist/ob_config").exists()
    # Everything else of the source onion is the shipped one's.
    shipped = blocks(DEPLOY / "tor/torrc")[source]
    kept = [x for x in first[source].splitlines() if not x.startswith("##")]
    assert [x for x in kept if x != "HiddenServiceOnionbalanceInstance 1"] == [
        x for x in shipped.splitlines() if not x.startswith("##")
    ]


def test_the_single_box_install_is_unchanged(cluster: Cluster, tmp_path: Path) -> None:
    """Without the options nothing of Onionbalance is written: the torrc is the shipped file
    byte for byte, and the files are exactly the ones the installer wrote before."""
    src = cluster.frontend.parent / "src"
    org = cluster.frontend.parent / "org.pub.json"
    root = tmp_path / "root"
    done = install(src, root, "--org-key", str(org), "--database", "sqlite")
    assert done.returncode == 0, done.stderr
    assert (root / "etc/tor/torrc").read_bytes() == (DEPLOY / "tor/torrc").read_bytes()
    written = {f for f in files(root) if not f.startswith("opt/tipline/src/")}
    assert written == {
        "etc/tipline/tipline.toml",
        "etc/tipline/redis.conf",
        "etc/nginx/snippets/tipline-common.conf",
        "etc/nginx/sites-available/tipline.conf",
        "etc/nginx/sites-enabled/tipline.conf",
        "etc/tor/torrc",
        *(
            f"etc/systemd/system/{u}"
            for u in (
                "tipline-redis.service",
                "tipline.socket",
                "tipline.service",
                "tipline-retention.service",
                "tipline-retention.timer",
                "tipline-digest.service",
                "tipline-digest.timer",
            )
        ),
        "opt/tipline/venv/.tipline-installed",
    }
    assert "--onionbalance" not in done.stdout
    # The backend's torrc differs from the shipped one only by the lines it adds.
    backend = (cluster.backends[0] / "etc/tor/torrc").read_text().splitlines()
    shipped = (DEPLOY / "tor/torrc").read_text().splitlines()
    added = [x for x in backend if x not in shipped]
    assert [x for x in backend if x in shipped] == shipped
    assert added[-1] == "HiddenServiceOnionbalanceInstance 1" and len(added) == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--backend", "x.onion"), "--backend goes with --onionbalance-frontend"),
        (("--no-journalist-onion",), "goes with --onionbalance-backend"),
        (("--onionbalance-backend", "nope.onion"), "not a v3 onion address"),
        (
            ("--onionbalance-frontend", "--onionbalance-backend", "x.onion"),
            "frontend or a backend, not both",
        ),
        (("--onionbalance-frontend", "--backend", "nope.onion"), "not a v3 onion address"),
    ],
)
def test_bad_onionbalance_options_are_refused(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    org = tmp_path / "org.pub.json"
    org.write_bytes(keys.OrgSecret.generate().public.to_json())
    done = install(REPO, tmp_path / "root", "--org-key", str(org), "--database", "sqlite", *args)
    assert done.returncode != 0 and message in done.stderr, done.stdout + done.stderr
    assert not (tmp_path / "root/etc/onionbalance/config.yaml").exists()
    assert not (tmp_path / "root/var/lib/tor/tipline-source/ob_config").exists()


def onionbalance_unit(tmp_path: Path, drop_in: str | None) -> Path:
    """Debian's onionbalance.service with (or without) the installed drop-in beside it."""
    debian = Path("/lib/systemd/system/onionbalance.service")
    if not debian.exists():
        pytest.fail("Debian's onionbalance is missing: apt-get install onionbalance")
    tmp_path.mkdir(parents=True, exist_ok=True)
    unit = tmp_path / "onionbalance.service"
    unit.write_text(debian.read_text())
    if drop_in is not None:
        (tmp_path / "onionbalance.service.d").mkdir()
        (tmp_path / "onionbalance.service.d/tipline.conf").write_text(drop_in)
    return unit


def exposure(unit: Path) -> float:
    done = subprocess.run(
        [need("systemd-analyze"), "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout + done.stderr)
    assert found, done.stdout + done.stderr
    return float(found.group(1))


def test_the_onionbalance_unit_is_sandboxed(cluster: Cluster, tmp_path: Path) -> None:
    installed = cluster.frontend / "etc/systemd/system/onionbalance.service.d/tipline.conf"
    drop_in = installed.read_text()
    assert drop_in == (DEPLOY / "systemd/onionbalance.service.d/tipline.conf").read_text()
    unit = onionbalance_unit(tmp_path / "with", drop_in)
    done = subprocess.run(
        [need("systemd-analyze"), "verify", "--man=no", str(unit)], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert exposure(unit) <= 1.0
    # Controls: Debian's unit alone is less confined; a misspelt key in the drop-in is seen.
    assert exposure(onionbalance_unit(tmp_path / "without", None)) > 1.0
    typo = onionbalance_unit(tmp_path / "typo", drop_in + "PrivateNetwrk=yes\n")
    done = subprocess.run(
        [need("systemd-analyze"), "verify", "--man=no", str(typo)], capture_output=True, text=True
    )
    assert "Unknown key" in done.stderr
