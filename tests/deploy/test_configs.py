"""The shipped configuration files, checked by the tools that will read them: nginx -t,
tor --verify-config (and a real, offline Tor start), systemd-analyze verify and security, and
the gunicorn settings and nginx limits against the app's own values.
"""

from __future__ import annotations

import base64
import re
import runpy
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from nacl.public import PrivateKey

from tipline.server.config import DEFAULTS

from .conftest import DEPLOY, REPO, gunicorn_command, need, python_tool, render_nginx

sys.path.insert(0, str(DEPLOY))
import onion_auth
import render

UNITS = (
    "tipline-redis.service",
    "tipline.socket",
    "tipline.service",
    "tipline-retention.service",
    "tipline-retention.timer",
    "tipline-digest.service",
    "tipline-digest.timer",
)


# --- nginx ---------------------------------------------------------------------------------


def test_nginx_accepts_the_shipped_site(tmp_path: Path) -> None:
    nginx = render_nginx(tmp_path, tmp_path / "gunicorn.sock")
    done = subprocess.run(
        [need("nginx"), "-t", "-p", str(tmp_path), "-c", str(nginx.conf)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "test is successful" in done.stderr


def test_shipped_limits_are_the_apps_defaults() -> None:
    shipped = (DEPLOY / "nginx" / "tipline.conf").read_text()
    assert render.render_nginx(shipped, DEFAULTS) == shipped
    bigger = render.render_nginx(shipped, {**DEFAULTS, "MAX_SUBMISSION_SIZE": 10 << 30})
    assert f"client_max_body_size {(10 << 30) + (2 << 20)};  # tipline:MAX_" in bigger
    with pytest.raises(SystemExit, match="unknown limit"):
        render.render_nginx("client_max_body_size 1;  # tipline:NOPE\n", DEFAULTS)


def test_every_body_limit_follows_the_app() -> None:
    """An unmarked client_max_body_size would not follow a changed app limit. (nginx's own
    pages, which read no body, check none: "0".)"""
    for name in ("tipline.conf", "tipline-common.conf"):
        for line in (DEPLOY / "nginx" / name).read_text().splitlines():
            if line.strip().startswith("client_max_body_size"):
                assert render.MARKED.match(line) or line == "    client_max_body_size 0;", line
    common = (DEPLOY / "nginx" / "tipline-common.conf").read_text()
    assert common.count("client_max_body_size 0;") == 1
    assert (
        "client_max_body_size 0;"
        in common.split("location ^~ /_tipline/ {", 1)[1].split("location = ", 1)[0]
    )


def test_the_gunicorn_and_nginx_header_limits_agree() -> None:
    settings = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    common = (DEPLOY / "nginx" / "tipline-common.conf").read_text()
    _count, size = re.search(r"large_client_header_buffers (\d+) (\d+)k;", common).groups()  # type: ignore[union-attr]
    assert settings["limit_request_line"] <= int(size) * 1024
    assert settings["limit_request_field_size"] <= int(size) * 1024
    assert settings["accesslog"] is None and settings["loglevel"] == "warning"
    assert settings["worker_class"] == "gthread"  # a sync worker dies on a slow upload
    assert settings["wsgi_app"] == "tipline.server.wsgi:app"


def test_gunicorn_stops_at_once_on_a_bad_configuration(tmp_path: Path) -> None:
    bad = tmp_path / "tipline.toml"
    bad.write_text('ORG_PUBLIC_KEY = "not base64"\n')
    done = subprocess.run(
        gunicorn_command(tmp_path / "g.sock"),
        env={"TIPLINE_CONFIG_FILE": str(bad), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "tipline-server: " in done.stderr and "ORG_PUBLIC_KEY" in done.stderr
    assert "Booting worker" not in done.stderr


# --- Tor -----------------------------------------------------------------------------------


def render_torrc(tmp_path: Path, extra: str = "") -> Path:
    text = (DEPLOY / "tor" / "torrc").read_text()
    assert "/var/lib/tor/" in text
    torrc = tmp_path / "torrc"
    torrc.write_text(text.replace("/var/lib/tor/", f"{tmp_path}/") + extra)
    (tmp_path / "data").mkdir(mode=0o700, exist_ok=True)
    return torrc


def tor_command(tmp_path: Path, torrc: Path, *extra: str) -> list[str]:
    return [
        need("tor"),
        "-f",
        str(torrc),
        "--defaults-torrc",
        "/dev/null",
        "--DataDirectory",
        str(tmp_path / "data"),
        *extra,
    ]


def test_tor_accepts_the_shipped_torrc(tmp_path: Path) -> None:
    done = subprocess.run(
        tor_command(tmp_path, render_torrc(tmp_path), "--verify-config"),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout
    assert "Configuration was valid" in done.stdout


def test_tor_refuses_a_broken_torrc(tmp_path: Path) -> None:
    """The check above can fail: a misspelt option is an error."""
    torrc = render_torrc(tmp_path, "HiddenServicePoWDefencesEnabled 1\n")
    done = subprocess.run(
        tor_command(tmp_path, torrc, "--verify-config"), capture_output=True, text=True
    )
    assert done.returncode != 0


def test_torrc_has_two_onions_with_pow() -> None:
    blocks = re.split(r"(?m)^HiddenServiceDir ", (DEPLOY / "tor" / "torrc").read_text())[1:]
    assert [b.split("\n", 1)[0] for b in blocks] == [
        "/var/lib/tor/tipline-source/",
        "/var/lib/tor/tipline-journalist/",
    ]
    source, journalist = blocks
    assert "HiddenServicePort 80 127.0.0.1:8080" in source
    assert "HiddenServicePort 80 127.0.0.1:8081" in journalist
    for block in blocks:
        assert "HiddenServiceVersion 3" in block and "HiddenServicePoWDefensesEnabled 1" in block
    site = (DEPLOY / "nginx" / "tipline.conf").read_text()
    assert "listen 127.0.0.1:8080 default_server proxy_protocol;" in site
    assert "listen 127.0.0.1:8081 default_server;" in site


def run_tor_until(tmp_path: Path, torrc: Path, marker: str, log: Path) -> str:
    """Start Tor with the network off (it still makes the onion keys and reads the client
    keys), wait for ``marker`` in its log, stop it, and return the log."""
    proc = subprocess.Popen(
        tor_command(
            tmp_path,
            torrc,
            "--DisableNetwork",
            "1",
            "--SocksPort",
            "0",
            "--Log",
            f"info file {log}",
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            if log.exists() and marker in log.read_text(errors="replace"):
                break
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        text = log.read_text(errors="replace") if log.exists() else ""
        assert marker in text, text[-2000:]
        return text
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_journalist_onion_client_authorisation_with_real_tor(tmp_path: Path) -> None:
    torrc = render_torrc(tmp_path)
    hs = tmp_path / "tipline-journalist"
    run_tor_until(tmp_path, torrc, "hs_service_load_all_keys", tmp_path / "first.log")
    for _ in range(50):
        if (hs / "hostname").exists():
            break
        time.sleep(0.1)
    onion = (hs / "hostname").read_text().strip()
    assert re.fullmatch(r"[a-z2-7]{56}\.onion", onion)
    done = subprocess.run(
        [sys.executable, str(DEPLOY / "onion_auth.py"), "add", "alice", "--hs-dir", str(hs)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    line = re.search(r"(?m)^  ([a-z2-7]{56}):descriptor:x25519:([A-Z2-7]{52})$", done.stdout)
    assert line and line.group(1) + ".onion" == onion
    secret = base64.b32decode(line.group(2) + "====")
    public = bytes(PrivateKey(secret).public_key)
    auth = hs / "authorized_clients" / "alice.auth"
    assert auth.read_text() == f"descriptor:x25519:{onion_auth.b32(public)}\n"
    assert auth.stat().st_mode & 0o777 == 0o600
    log = run_tor_until(
        tmp_path, torrc, "Loaded a client authorization key file alice.auth", tmp_path / "2.log"
    )
    assert not [x for x in log.splitlines() if "[warn]" in x and "auth" in x.lower()]
    # The same name twice is refused; the first key stays.
    again = subprocess.run(
        [sys.executable, str(DEPLOY / "onion_auth.py"), "add", "alice", "--hs-dir", str(hs)],
        capture_output=True,
        text=True,
    )
    assert again.returncode != 0 and "exists" in again.stderr
    assert auth.read_text() == f"descriptor:x25519:{onion_auth.b32(public)}\n"


@pytest.mark.parametrize("name", ["", "../x", "Alice", "a" * 33, "a b"])
def test_onion_auth_refuses_bad_names(tmp_path: Path, name: str) -> None:
    (tmp_path / "hostname").write_text("a" * 56 + ".onion\n")
    with pytest.raises(SystemExit, match="a name is"):
        onion_auth.add(name, tmp_path)
    assert not (tmp_path / "authorized_clients").exists()


def test_onion_auth_needs_the_onion(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="start Tor once"):
        onion_auth.add("bob", tmp_path)


# --- systemd -------------------------------------------------------------------------------


def render_units(tmp_path: Path) -> list[Path]:
    """The units with the installed paths pointed at this checkout (verify checks that each
    command exists); nothing else changes."""
    bin_dir = Path(python_tool("gunicorn")).parent
    paths = []
    for unit in UNITS:
        text = (DEPLOY / "systemd" / unit).read_text()
        text = text.replace("/opt/tipline/venv/bin/", f"{bin_dir}/")
        text = text.replace("/opt/tipline/src/", f"{REPO}/")
        (tmp_path / unit).write_text(text)
        paths.append(tmp_path / unit)
    return paths


def test_systemd_verifies_the_units(tmp_path: Path) -> None:
    done = subprocess.run(
        [need("systemd-analyze"), "verify", "--man=no", *map(str, render_units(tmp_path))],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and done.stderr == "" and done.stdout == "", done.stderr


def test_systemd_verify_would_catch_a_mistake(tmp_path: Path) -> None:
    (unit,) = [p for p in render_units(tmp_path) if p.name == "tipline.service"]
    unit.write_text(unit.read_text().replace("ProtectHome=yes", "ProtectHome=yes\nProtectHom=1"))
    done = subprocess.run(
        [need("systemd-analyze"), "verify", "--man=no", str(unit)], capture_output=True, text=True
    )
    assert "Unknown key" in done.stderr


@pytest.mark.parametrize(
    "unit", ["tipline.service", "tipline-retention.service", "tipline-digest.service"]
)
def test_units_are_sandboxed(tmp_path: Path, unit: str) -> None:
    path = {p.name: p for p in render_units(tmp_path)}[unit]
    done = subprocess.run(
        [need("systemd-analyze"), "security", "--offline=true", "--no-pager", str(path)],
        capture_output=True,
        text=True,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout + done.stderr)
    assert found, done.stdout + done.stderr
    assert float(found.group(1)) <= 1.0, done.stdout
    settings = directives(DEPLOY / "systemd" / unit)
    for key, value in {
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        "ProtectHome": "yes",
        "User": "tipline",
        "StateDirectory": "tipline",
        "PrivateNetwork": "yes",
    }.items():
        assert settings.get(key) == [value], key
    assert "ReadWritePaths" not in settings  # the state directory is the only writable place


def directives(path: Path) -> dict[str, list[str]]:
    """Every Key=Value of a unit file, in order (comments and sections left out)."""
    found: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def test_both_services_have_the_same_sandbox() -> None:
    def sandbox(unit: str) -> str:
        return (
            (DEPLOY / "systemd" / unit).read_text().split("# --- Sandbox", 1)[1].split("\n", 1)[1]
        )

    assert (
        sandbox("tipline.service").split("[Install]")[0].strip()
        == sandbox("tipline-retention.service").strip()
        == sandbox("tipline-digest.service").strip()
    )


def test_units_point_at_the_shipped_files() -> None:
    service = directives(DEPLOY / "systemd" / "tipline.service")
    assert service["ExecStart"] == ["/opt/tipline/venv/bin/tipline-server serve"]
    retention = directives(DEPLOY / "systemd" / "tipline-retention.service")
    assert retention["ExecStart"] == ["/opt/tipline/venv/bin/tipline-server retention"]
    socket = directives(DEPLOY / "systemd" / "tipline.socket")
    assert socket["ListenStream"] == ["/run/tipline/gunicorn.sock"]
    assert (
        "server unix:/run/tipline/gunicorn.sock;" in (DEPLOY / "nginx" / "tipline.conf").read_text()
    )
    timer: dict[str, Any] = directives(DEPLOY / "systemd" / "tipline-retention.timer")
    assert timer["Persistent"] == ["true"]


# --- Availability (issue 10): every directive, as shipped ----------------------------------


def server_blocks() -> tuple[str, str]:
    site = (DEPLOY / "nginx" / "tipline.conf").read_text()
    source, journalist = site.split("\n# The journalist onion", 1)
    return source.split("# The source onion", 1)[1], journalist


def location(block: str, head: str) -> str:
    """The text of one location, from its line to the next location at the same depth."""
    start = block.index(head)
    depth = 0
    for i in range(start, len(block)):
        if block[i] == "{":
            depth += 1
        elif block[i] == "}":
            depth -= 1
            if depth == 0:
                return block[start : i + 1]
    raise AssertionError(head)


def test_source_server_limits_per_circuit_in_memory_only() -> None:
    site = (DEPLOY / "nginx" / "tipline.conf").read_text()
    common = (DEPLOY / "nginx" / "tipline-common.conf").read_text()
    source, journalist = server_blocks()
    assert "listen 127.0.0.1:8080 default_server proxy_protocol;" in source
    assert "proxy_protocol" not in journalist  # Tor exports circuit ids on the source onion only
    assert "limit_conn_zone $proxy_protocol_addr zone=tipline_circuit:2m;" in site
    assert "limit_conn_zone $proxy_protocol_addr zone=tipline_circuit_bodies:2m;" in site
    assert "limit_conn_zone $tipline_everyone zone=tipline_bodies:64k;" in site
    assert "limit_req_zone $tipline_post_circuit zone=tipline_login:2m rate=10r/m;" in site
    assert "limit_req_zone $tipline_post_circuit zone=tipline_submit:2m rate=10r/m;" in site
    assert "limit_conn_status 429;" in site and "limit_req_status 429;" in site
    # The circuit id reaches no log and not the app.
    assert (
        "access_log off;" in common
        and "error_log /var/log/nginx/tipline-error.log emerg;" in common
    )
    assert "limit_conn_log_level info;" in site and "limit_req_log_level info;" in site
    for text in (site, common):
        for line in text.splitlines():
            if "proxy_set_header" in line or "add_header" in line or "log_format" in line:
                assert "proxy_protocol" not in line and "remote_addr" not in line, line
    for header in ("X-Forwarded-For", "X-Real-IP", "Forwarded", "User-Agent", "Referer"):
        assert f'proxy_set_header {header} "";' in common, header
    assert "real_ip" not in site + common  # $remote_addr stays 127.0.0.1
    # Where each limit applies.
    assert "    limit_conn tipline_circuit 8;" in source
    for head in ("location = /login {", "location = /api/source/login {"):
        assert "limit_req zone=tipline_login burst=10 nodelay;" in location(source, head), head
    submit = location(source, "location = /submit {")
    uploads = location(source, "location ^~ /api/source/uploads {")
    for block in (submit, uploads):
        assert "proxy_request_buffering off;" in block
        assert "limit_conn tipline_circuit 8;" in block  # a limit_conn here replaces the server's
        assert "limit_conn tipline_circuit_bodies 2;" in block
        assert "limit_conn tipline_bodies 8;" in block
        assert "limit_conn_status 503;" in block  # the upload page retries a 503, not a 429
    assert "limit_req zone=tipline_submit burst=10 nodelay;" in submit
    assert "limit_req zone=tipline_submit burst=10 nodelay;" in location(
        uploads, "location = /api/source/uploads {"
    )


def test_only_bodies_that_fit_nginx_memory_are_buffered() -> None:
    from tipline.server.security import SMALL_BODY

    common = (DEPLOY / "nginx" / "tipline-common.conf").read_text()
    source, journalist = server_blocks()
    assert "client_body_buffer_size 64k;" in common and SMALL_BODY == 64 * 1024
    assert f"client_max_body_size {SMALL_BODY};  # tipline:SMALL_BODY" in common
    assert not re.search(r"(?m)^\s*proxy_request_buffering", common)  # each server says
    # Buffered on the source server, where the default limit is SMALL_BODY; every location
    # that accepts more turns it off.
    assert "    proxy_request_buffering on;" in source
    heads = re.findall(r"(?m)^\s*(location [^{\n]*\{)", source)
    larger = [h for h in heads if "client_max_body_size" in location(source, h)]
    assert len(larger) >= 3, larger  # /submit, the upload API and its chunks
    for head in larger:
        assert "proxy_request_buffering off;" in location(source, head), head
    assert "    proxy_request_buffering off;" in journalist
    assert "client_body_in_file_only off;" in common


def test_slow_clients_have_short_timeouts() -> None:
    common = (DEPLOY / "nginx" / "tipline-common.conf").read_text()
    assert "client_header_timeout 30s;" in common
    assert "client_body_timeout 60s;" in common
    assert "send_timeout 120s;" in common
    from tipline.server.bodytimeout import BODY_READ_TIMEOUT

    assert 60 < BODY_READ_TIMEOUT < 120  # after nginx's, so nginx answers the client first
    settings = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    # nginx lets 8 bodies in at once: each worker keeps threads for pages however they fall.
    assert settings["threads"] > 8 and settings["workers"] == 2
    assert settings["logger_class"].__name__ == "QuietLogger"


def test_torrc_limits_streams_and_sandboxes_tor() -> None:
    text = (DEPLOY / "tor" / "torrc").read_text()
    source, journalist = re.split(r"(?m)^HiddenServiceDir ", text)[1:]
    assert re.search(r"(?m)^Sandbox 1$", text)
    assert "HiddenServiceExportCircuitID haproxy" in source
    assert "HiddenServiceExportCircuitID" not in journalist
    for block in (source, journalist):
        assert "HiddenServiceMaxStreams 20\n" in block
        assert "HiddenServiceMaxStreamsCloseCircuit 1" in block
        assert "HiddenServicePoWQueueRate 20" in block
        assert "HiddenServicePoWQueueBurst 100" in block


def test_app_unit_keeps_memory_out_of_cores_and_swap() -> None:
    service = directives(DEPLOY / "systemd" / "tipline.service")
    assert service["LimitCORE"] == ["0"] and service["MemorySwapMax"] == ["0"]


# --- The limits store (Redis) ----------------------------------------------------------------


def test_redis_unit_is_sandboxed(tmp_path: Path) -> None:
    path = {p.name: p for p in render_units(tmp_path)}["tipline-redis.service"]
    done = subprocess.run(
        [need("systemd-analyze"), "security", "--offline=true", "--no-pager", str(path)],
        capture_output=True,
        text=True,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout + done.stderr)
    assert found, done.stdout + done.stderr
    assert float(found.group(1)) <= 1.0, done.stdout
    settings = directives(DEPLOY / "systemd" / "tipline-redis.service")
    for key, value in {
        "User": "tipline-redis",
        "Group": "tipline",  # the socket's group: the app may open it
        "RuntimeDirectory": "tipline-redis",
        "RuntimeDirectoryMode": "0750",
        "PrivateNetwork": "yes",
        "RestrictAddressFamilies": "AF_UNIX",
        "ProtectSystem": "strict",
        "LimitCORE": "0",
        "MemorySwapMax": "0",
        "ExecStart": "/usr/bin/redis-server /etc/tipline/redis.conf --supervised systemd "
        "--daemonize no",
    }.items():
        assert settings.get(key) == [value], key
    assert "StateDirectory" not in settings  # nothing of it on disk
    app = directives(DEPLOY / "systemd" / "tipline.service")
    assert app["Wants"] == ["tipline-redis.service"]
    assert "tipline-redis.service" in app["After"][0]


def redis_call(sock: Path, *args: str) -> bytes:
    """One command over Redis's Unix socket (RESP), its raw reply."""
    import socket as socket_

    with socket_.socket(socket_.AF_UNIX) as s:
        s.connect(str(sock))
        s.settimeout(10)
        s.sendall(
            f"*{len(args)}\r\n".encode()
            + b"".join(f"${len(a.encode())}\r\n{a}\r\n".encode() for a in args)
        )
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply


@pytest.mark.parametrize("persist", [False, True])
def test_redis_runs_from_the_shipped_config_in_memory_only(tmp_path: Path, persist: bool) -> None:
    """redis-server with the shipped file (only the socket folder moved): it answers on the
    Unix socket, has no TCP port, and leaves no file after a write and a shutdown. Control:
    without its 'save ""' line the same shutdown writes dump.rdb, so the check sees a file."""
    text = (DEPLOY / "redis" / "tipline-redis.conf").read_text()
    assert text.count("/run/tipline-redis") == 2 and 'save ""\n' in text
    text = text.replace("/run/tipline-redis", str(tmp_path))
    if persist:
        text = text.replace('save ""\n', "")
    conf = tmp_path / "redis.conf"
    conf.write_text(text)
    sock = tmp_path / "redis.sock"
    log = tmp_path.parent / f"{tmp_path.name}-redis.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [need("redis-server"), str(conf)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.1)
        assert redis_call(sock, "PING") == b"+PONG\r\n"
        assert sock.stat().st_mode & 0o777 == 0o660
        assert redis_call(sock, "CONFIG", "GET", "port").endswith(b"$1\r\n0\r\n")
        assert redis_call(sock, "CONFIG", "GET", "appendonly").endswith(b"$2\r\nno\r\n")
        assert redis_call(sock, "SET", "LIMITS:probe", "1") == b"+OK\r\n"
        redis_call(sock, "SHUTDOWN")
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    left = sorted(p.name for p in tmp_path.iterdir() if p.name != "redis.conf")
    assert left == (["dump.rdb"] if persist else []), left
