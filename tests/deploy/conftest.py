"""The shipped deployment files, rendered into temporary prefixes and run for real.

Only paths and ports are rewritten (each rewrite checks that the text it replaces is in the
shipped file, so a change there fails here rather than being silently not tested). nginx, tor,
systemd-analyze and shellcheck are Debian packages; a missing one is a failure, never a skip.
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import io
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tipline.crypto import keys, manifest
from tipline.crypto.encoding import b64e

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
HEADERS_MORE = Path("/usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so")
PACKAGES = {
    "nginx": "nginx libnginx-mod-http-headers-more-filter",
    "tor": "tor",
    "systemd-analyze": "systemd",
    "shellcheck": "shellcheck",
    "redis-server": "redis-server",
    "strace": "strace",
}

# A visitor as distinctive as possible: its own loopback address (Linux answers on all of
# 127/8), a User-Agent, a Referer and a forged forwarding header. None may appear in any log.
CLIENT_ADDR = "127.83.91.7"
DISTINCTIVE = {
    "User-Agent": "DeployProbe/9.4 (distinctive-agent)",
    "Referer": "http://distinctive-referer.example/deploy-leak",
    "X-Forwarded-For": "198.51.100.77",
}


def proxy_line(circuit: int) -> bytes:
    """The PROXY protocol line Tor sends first on each stream to the source onion
    (``HiddenServiceExportCircuitID haproxy``, tor(1)): the circuit's 32-bit global id in the
    last 32 bits of an fc00:dead:beef:4dad::/64 source address, nothing about the client."""
    assert 0 < circuit < 1 << 32
    src = f"fc00:dead:beef:4dad::{circuit >> 16:x}:{circuit & 0xFFFF:x}"
    return f"PROXY TCP6 {src} ::1 65535 80\r\n".encode()


_circuits = iter(range(1000, 1 << 31))


def new_circuit() -> int:
    """A circuit id no other client in this test run has used."""
    return next(_circuits)


def need(tool: str) -> str:
    """The path of a Debian tool the test needs, or a failure that says how to get it."""
    found = shutil.which(tool)
    if found is None:
        pytest.fail(f"{tool} is missing: apt-get install {PACKAGES[tool]}")
    return found


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def replace_all(text: str, replacements: dict[str, str]) -> str:
    """``text`` with each key replaced, failing if a key is not in it."""
    for old, new in replacements.items():
        assert old in text, f"the shipped file no longer contains {old!r}"
        text = text.replace(old, new)
    return text


@dataclass
class Nginx:
    """nginx running the shipped site from a temporary prefix."""

    prefix: Path
    conf: Path
    source_port: int
    journalist_port: int
    proc: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # nginx's own master by its pid file (under strace, proc is strace, which would
            # only detach), then the process started.
            _terminate_pid_file(self.prefix / "nginx.pid")
            self.proc.terminate()
            self.proc.wait(timeout=10)


def _terminate_pid_file(path: Path) -> None:
    with contextlib.suppress(OSError, ValueError):
        os.kill(int(path.read_text().strip()), signal.SIGTERM)


def render_nginx(
    prefix: Path, upstream: Path, error_level: str = "emerg", site_text: str | None = None
) -> Nginx:
    """The shipped site and snippet under ``prefix``, in an nginx.conf like Debian's: the main
    error log and an http-level access log stay on, so the site must switch them off itself.
    ``site_text`` is the site as deploy/render.py rendered it (default: the shipped file).
    """
    prefix.mkdir(parents=True, exist_ok=True)
    source_port, journalist_port = free_port(), free_port()
    common = replace_all(
        (DEPLOY / "nginx" / "tipline-common.conf").read_text(),
        {
            "error_log /var/log/nginx/tipline-error.log emerg;": (
                f"error_log {prefix}/tipline-error.log {error_level};"
            )
        },
    )
    site = replace_all(
        site_text if site_text is not None else (DEPLOY / "nginx" / "tipline.conf").read_text(),
        {
            "/etc/nginx/snippets/tipline-common.conf": str(prefix / "tipline-common.conf"),
            "unix:/run/tipline/gunicorn.sock": f"unix:{upstream}",
            "127.0.0.1:8080": f"127.0.0.1:{source_port}",
            "127.0.0.1:8081": f"127.0.0.1:{journalist_port}",
        },
    )
    (prefix / "tipline-common.conf").write_text(common)
    (prefix / "tipline.conf").write_text(site)
    temp = "\n".join(
        f"    {kind}_temp_path {prefix}/{kind}-temp;"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root root;\n" if os.geteuid() == 0 else ""
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"load_module {HEADERS_MORE};\n{user}worker_processes 1;\npid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/main-error.log;\n"
        "events { worker_connections 768; }\n"  # Debian's nginx.conf
        "http {\n    include /etc/nginx/mime.types;\n    default_type application/octet-stream;\n"
        f"{temp}\n    access_log {prefix}/access.log;\n    include {prefix}/tipline.conf;\n}}\n"
    )
    logs = [prefix / n for n in ("tipline-error.log", "main-error.log", "access.log")]
    return Nginx(prefix, conf, source_port, journalist_port, logs=logs)


def start_nginx(nginx: Nginx, wrap: list[str] | None = None) -> Nginx:
    """Run nginx in the foreground (its stderr into the prefix) until it answers; ``wrap``
    prefixes the command (strace)."""
    binary = need("nginx")
    if not HEADERS_MORE.exists():
        pytest.fail(f"{HEADERS_MORE} is missing: apt-get install {PACKAGES['nginx']}")
    stderr = nginx.prefix / "nginx.stderr"
    nginx.logs.append(stderr)
    with stderr.open("wb") as out:
        nginx.proc = subprocess.Popen(
            [
                *(wrap or []),
                *[binary, "-p", str(nginx.prefix), "-c", str(nginx.conf), "-g", "daemon off;"],
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wait_for(lambda: _connects(("127.0.0.1", nginx.source_port)), "nginx", stderr)
    return nginx


def _connects(address: tuple[str, int] | str) -> bool:
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family) as s:
        try:
            s.connect(address)
        except OSError:
            return False
    return True


def wait_for(ready: object, what: str, log: Path) -> None:
    """Poll ``ready()`` for up to 20 s; fail with the log if it never is."""
    assert callable(ready)
    for _ in range(200):
        if ready():
            return
        time.sleep(0.1)
    pytest.fail(f"{what} did not start: {log.read_text(errors='replace')}")


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class _ProxiedConnection(http.client.HTTPConnection):
    """An HTTP connection that starts with Tor's PROXY line, as on the source onion."""

    def __init__(self, *args: object, circuit: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.circuit = circuit

    def connect(self) -> None:
        super().connect()
        assert self.sock is not None
        self.sock.sendall(proxy_line(self.circuit))


class Client:
    """A visitor from ``CLIENT_ADDR`` with distinctive headers and one session cookie. On the
    source onion (``circuit`` given) each connection starts with Tor's PROXY line naming that
    circuit; the journalist onion gets none."""

    def __init__(self, port: int, circuit: int | None = None, timeout: float = 30) -> None:
        self.port = port
        self.circuit = circuit
        self.timeout = timeout
        self.cookies: dict[str, str] = {}

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        conn = (
            http.client.HTTPConnection(
                "127.0.0.1", self.port, timeout=self.timeout, source_address=(CLIENT_ADDR, 0)
            )
            if self.circuit is None
            else _ProxiedConnection(
                "127.0.0.1",
                self.port,
                timeout=self.timeout,
                source_address=(CLIENT_ADDR, 0),
                circuit=self.circuit,
            )
        )
        sent = {**DISTINCTIVE, **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        with contextlib.closing(conn):
            conn.request(method, path, body=body, headers=sent)
            reply = conn.getresponse()
            data = reply.read()
        for cookie in reply.headers.get_all("Set-Cookie") or []:
            name, _, rest = cookie.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return Response(reply.status, reply.headers, data)


def source_client(port: int) -> Client:
    """A visitor to the source onion on a circuit of its own."""
    return Client(port, new_circuit())


class TorFront:
    """What Tor does in front of the source server block, for clients that cannot send a PROXY
    line themselves (browsers): a loopback port whose every connection is passed to nginx after
    the PROXY line of one circuit (Tor Browser uses one circuit per site)."""

    def __init__(self, nginx_port: int, circuit: int | None = None) -> None:
        self.nginx_port = nginx_port
        self.circuit = circuit or new_circuit()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.closed = False
        self.relays: list[threading.Thread] = []
        self.open: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            relay = threading.Thread(target=self._relay, args=(client,), daemon=True)
            self.relays.append(relay)
            relay.start()

    def _relay(self, client: socket.socket) -> None:
        with client:
            try:
                upstream = socket.create_connection(("127.0.0.1", self.nginx_port))
            except OSError:
                return  # nginx is gone: the browser sees its connection closed
            with upstream:
                self._join(client, upstream)

    def _join(self, client: socket.socket, upstream: socket.socket) -> None:
        """Pass bytes both ways, after the PROXY line, until either side ends."""
        with self.lock:
            self.open.update((client, upstream))
        try:
            upstream.sendall(proxy_line(self.circuit))
            back = threading.Thread(target=self._pipe, args=(upstream, client), daemon=True)
            back.start()
            self._pipe(client, upstream)
            back.join()
        except OSError:
            pass
        finally:
            with self.lock:
                self.open.difference_update((client, upstream))

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Stop accepting, end every relayed connection, and wait for the threads."""
        self.closed = True
        self.listener.close()
        self.acceptor.join(timeout=5)
        with self.lock:
            for s in self.open:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
        for relay in self.relays:
            relay.join(timeout=5)


def python_tool(name: str) -> str:
    """A console script installed next to this interpreter (tipline-server, gunicorn)."""
    path = Path(sys.executable).parent / name
    assert path.exists(), f"{path} is missing: install the project (make setup)"
    return str(path)


def configured_site(
    base: Path, label: str
) -> tuple[dict[str, str], keys.OrgSecret, keys.RecipientSecret]:
    """A tip line configured as an admin would: a TOML file (SQLite under ``base/data``, a fresh
    org key, its own session secret, no free-space floor), ``tipline-server db upgrade`` and
    ``install-manifest --yes`` of a manifest of one journalist key (``label``, 30 days) run
    through the real command. Returns the environment naming that file (no other TIPLINE_ or
    LISTEN_ variable), the org key and the journalist key."""
    data = base / "data"
    org = keys.OrgSecret.generate()
    journalist = keys.RecipientSecret.generate(label)
    today = datetime.datetime.now(datetime.UTC).date()
    signed = manifest.sign_manifest(
        org, 1, [journalist.public], today, today + datetime.timedelta(days=30)
    )
    (base / "manifest.json").write_bytes(signed)
    config = base / "tipline.toml"
    config.write_text(
        f'DATA_DIR = "{data}"\n'
        f'ORG_PUBLIC_KEY = "{b64e(org.public.public_key)}"\n'
        f'DATABASE_URL = "sqlite:///{data}/tipline.db"\n'
        f'SECRET_KEY = "{secrets.token_urlsafe(48)}"\n'
        "MIN_FREE_BYTES = 0\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIPLINE_", "LISTEN_"))}
    env["TIPLINE_CONFIG_FILE"] = str(config)
    for command in (["db", "upgrade"], ["install-manifest", "--yes", str(base / "manifest.json")]):
        done = subprocess.run(
            [python_tool("tipline-server"), *command], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
    return env, org, journalist


def gunicorn_command(sock: Path, conf: Path = DEPLOY / "gunicorn.conf.py") -> list[str]:
    """gunicorn with the shipped settings (or ``conf``), bound to the Unix socket ``sock``."""
    return [sys.executable, "-m", "gunicorn", "-c", str(conf), "-b", f"unix:{sock}"]


def csrf_token(page: Response) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert found, page.text[:300]
    return found.group(1)


def multipart(fields: dict[str, str], files: dict[str, bytes]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        out.write(value.encode() + b"\r\n")
    for filename, data in files.items():
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
            f'filename="{filename}"\r\nContent-Type: text/plain\r\n\r\n'.encode()
        )
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


@dataclass
class Served:
    """gunicorn with the shipped settings behind nginx with the shipped site (or ``site_text``),
    configured by a TOML file as the installer writes it, migrated, with a key manifest."""

    base: Path
    nginx: Nginx
    gunicorn: subprocess.Popen[bytes]
    gunicorn_log: Path
    env: dict[str, str]

    def source(self, circuit: int | None = None) -> Client:
        return Client(self.nginx.source_port, circuit or new_circuit())


@contextlib.contextmanager
def serve_stack(
    base: Path,
    site_text: str | None = None,
    extra_config: str = "",
    wrap_nginx: list[str] | None = None,
    wrap_gunicorn: list[str] | None = None,
    gunicorn_args: list[str] | None = None,
) -> Iterator[Served]:
    """Start the stack under ``base``; ``wrap_*`` prefix the commands (strace);
    ``gunicorn_args`` are added to gunicorn's (another app, another logger)."""
    base.mkdir(parents=True, exist_ok=True)
    data, tmp = base / "data", base / "tmp"
    tmp.mkdir(exist_ok=True)
    org = keys.OrgSecret.generate()
    journalist = keys.RecipientSecret.generate("Availability journalist")
    today = datetime.datetime.now(datetime.UTC).date()
    (base / "manifest.json").write_bytes(
        manifest.sign_manifest(org, 1, [journalist.public], today, today + datetime.timedelta(9))
    )
    config = base / "tipline.toml"
    config.write_text(
        f'DATA_DIR = "{data}"\nORG_PUBLIC_KEY = "{b64e(org.public.public_key)}"\n'
        f'DATABASE_URL = "sqlite:///{data}/tipline.db"\n'
        f'SECRET_KEY = "{secrets.token_urlsafe(48)}"\nMIN_FREE_BYTES = 0\n' + extra_config
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIPLINE_")}
    env.update(TIPLINE_CONFIG_FILE=str(config), TMPDIR=str(tmp), PYTHONPATH=str(REPO))
    for command in (["db", "upgrade"], ["install-manifest", "--yes", str(base / "manifest.json")]):
        done = subprocess.run(
            [python_tool("tipline-server"), *command], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
    sock, log = base / "gunicorn.sock", base / "gunicorn.log"
    with log.open("wb") as out:
        gunicorn = subprocess.Popen(
            [
                *(wrap_gunicorn or []),
                *gunicorn_command(sock),
                "-p",
                str(base / "gunicorn.pid"),
                *(gunicorn_args or []),
            ],
            env=env,
            cwd=base,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    nginx = render_nginx(base / "nginx", sock, site_text=site_text)
    try:
        wait_for(lambda: sock.exists(), "gunicorn", log)
        start_nginx(nginx, wrap_nginx)
        wait_for(
            lambda: source_client(nginx.source_port).request("GET", "/").status == 200, "app", log
        )
        yield Served(base, nginx, gunicorn, log, env)
    finally:
        nginx.stop()
        _terminate_pid_file(base / "gunicorn.pid")
        gunicorn.terminate()
        try:
            gunicorn.wait(timeout=30)
        except subprocess.TimeoutExpired:
            gunicorn.kill()
            gunicorn.wait()
