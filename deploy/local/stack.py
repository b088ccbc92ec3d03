"""Provision, start and stop baocao's real servers (and services) on a machine without Docker.

Kafka comes from Maven Central; FerretDB, Mailpit and Alertmanager from the Go module proxy,
built side by side; Prometheus (with promtool) is Debian's package, unpacked without being
installed. Everything downloaded or built lands in one ignored folder (``.stack/`` by default)
so the second start needs no network. Processes are tracked by PID file and stopped by PID,
never by name.
FerretDB stores its data in a PostgreSQL server from Debian's ``postgresql`` package that this
script also runs (default; the faster backend by ``make bench``, see deploy/README.md) or, with
BAOCAO_FERRETDB_BACKEND=sqlite, in SQLite files.

Usage: python -m deploy.local.stack {up,down,status,provision,clean-data,start,stop} [names]
Standard library only: it runs before the virtualenv exists.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import json
import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

KAFKA_VERSION = "4.4.0"
FERRETDB_VERSION = "v1.24.2"
MAILPIT_VERSION = "v1.33.1"
PROMETHEUS_PACKAGE = "prometheus"  # Debian 12: Prometheus 2.42.0 with promtool
ALERTMANAGER_VERSION = "v0.35.0"
SERVICES = ("submissions", "deadlines", "notify", "consolidate")
MONITORING = ("prometheus", "alertmanager")
"""Started after the services (they scrape and alert on them), stopped before them."""
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
FERRETDB_BACKENDS = ("sqlite", "postgresql")
DEFAULT_FERRETDB_BACKEND = "postgresql"
POSTGRES_USER = "postgres"  # Debian's system user; PostgreSQL refuses to run as root
POSTGRES_DATABASE = "ferretdb"
POSTGRES_TOOLS = ("initdb", "postgres", "pg_isready", "psql", "createdb")


class StackError(Exception):
    """A server could not be provisioned, started or stopped; the message says which and why."""


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@dataclass(frozen=True)
class Layout:
    """Where things live; every path and port can be moved by an environment variable."""

    stack_dir: Path = field(
        default_factory=lambda: Path(os.environ.get("BAOCAO_STACK_DIR", ROOT / ".stack"))
    )
    data_dir_override: str | None = field(default_factory=lambda: os.environ.get("BAOCAO_DATA_DIR"))
    kafka_port: int = field(default_factory=lambda: env_int("BAOCAO_KAFKA_PORT", 9092))
    kafka_controller_port: int = field(
        default_factory=lambda: env_int("BAOCAO_KAFKA_CONTROLLER_PORT", 9093)
    )
    kafka_heap: str = field(
        default_factory=lambda: os.environ.get("BAOCAO_KAFKA_HEAP", "-Xms256m -Xmx768m")
    )
    mongo_port: int = field(default_factory=lambda: env_int("BAOCAO_MONGO_PORT", 27017))
    ferretdb_debug_port: int = field(
        default_factory=lambda: env_int("BAOCAO_FERRETDB_DEBUG_PORT", 8088)
    )
    smtp_port: int = field(default_factory=lambda: env_int("BAOCAO_SMTP_PORT", 1025))
    mailpit_port: int = field(default_factory=lambda: env_int("BAOCAO_MAILPIT_PORT", 8025))
    ferretdb_backend: str = field(
        default_factory=lambda: os.environ.get("BAOCAO_FERRETDB_BACKEND", DEFAULT_FERRETDB_BACKEND)
    )
    postgres_port: int = field(default_factory=lambda: env_int("BAOCAO_POSTGRES_PORT", 5432))
    # Not 9093: Kafka's controller holds Alertmanager's default port.
    prometheus_port: int = field(default_factory=lambda: env_int("BAOCAO_PROMETHEUS_PORT", 9090))
    alertmanager_port: int = field(
        default_factory=lambda: env_int("BAOCAO_ALERTMANAGER_PORT", 9094)
    )
    operators_email: str = field(
        default_factory=lambda: os.environ.get("BAOCAO_OPERATORS_EMAIL", "van-hanh@baocao.example")
    )
    office_alert_email: str | None = field(
        default_factory=lambda: os.environ.get("BAOCAO_OFFICE_ALERT_EMAIL") or None
    )
    """Who the office's alerts reach besides the operators (audience="office"); unset, the
    consolidating units' e-mail contacts of the plans the services run (``office_addresses``)."""
    plan_files: tuple[Path, ...] = field(
        default_factory=lambda: tuple(
            ROOT / p.strip()
            for p in os.environ.get("BAOCAO_PLANS", "data/plans/kh-nq35-ngoc-hoi.yaml").split(",")
            if p.strip()
        )
    )
    """The plans the services run (BAOCAO_PLANS, as the Makefile passes it)."""
    runbook_base_url: str = field(
        default_factory=lambda: os.environ.get("BAOCAO_RUNBOOK_BASE_URL", ROOT.as_uri())
    )
    """Where the repository's files are read: an alert mail links this followed by the rule's
    ``runbook_url`` (the section's path in the repository). Default: this checkout."""
    scrape_interval: str | None = field(
        default_factory=lambda: os.environ.get("BAOCAO_PROMETHEUS_SCRAPE_INTERVAL")
    )
    """Prometheus's scrape and evaluation interval (e.g. "1s" for a test that cannot wait);
    unset: prometheus.local.yml's own (15 s), the one the rules' durations are written for."""

    def __post_init__(self) -> None:
        if self.ferretdb_backend not in FERRETDB_BACKENDS:
            raise StackError(
                f"BAOCAO_FERRETDB_BACKEND={self.ferretdb_backend!r}: "
                f"choose one of {', '.join(FERRETDB_BACKENDS)}"
            )

    @property
    def data_dir(self) -> Path:
        return Path(self.data_dir_override) if self.data_dir_override else self.stack_dir / "data"

    @property
    def bin_dir(self) -> Path:
        return self.stack_dir / "bin"

    def debian_bin(self, package: str) -> Path:
        """Where ``provision_debian_programs`` unpacks a package's programs."""
        return self.stack_dir / "debian" / package / "usr" / "bin"

    @property
    def _state_root(self) -> Path:
        # A stack is known by its data. A second stack with its own BAOCAO_DATA_DIR keeps its PID
        # files and logs beside that data, so it never reads (or stops) the first stack's
        # processes; the default stack keeps them in .stack/run and .stack/logs as before.
        if self.data_dir.resolve() == (self.stack_dir / "data").resolve():
            return self.stack_dir
        return self.data_dir

    @property
    def run_dir(self) -> Path:
        return self._state_root / "run"

    @property
    def log_dir(self) -> Path:
        return self._state_root / "logs"

    def postgresql_url(self) -> str:
        return f"postgres://{POSTGRES_USER}@127.0.0.1:{self.postgres_port}/{POSTGRES_DATABASE}"

    @property
    def kafka_lib(self) -> Path:
        return self.stack_dir / "kafka" / KAFKA_VERSION / "lib"

    @staticmethod
    def default_service_port(service: str) -> int:
        return {"submissions": 8000, "deadlines": 8001, "notify": 8002, "consolidate": 8003}[
            service
        ]

    def service_port(self, service: str) -> int:
        return env_int(f"BAOCAO_{service.upper()}_PORT", self.default_service_port(service))

    @property
    def signing_key(self) -> Path:
        return self.stack_dir / "auth" / "signing-key.pem"

    @property
    def verifying_key(self) -> Path:
        return self.stack_dir / "auth" / "signing-key.pub.pem"

    @property
    def demo_accounts(self) -> Path:
        return self.stack_dir / "demo-accounts.txt"

    def service_env(self) -> dict[str, str]:
        """What the services need to find the servers this stack runs, and its sign-in key."""
        return {
            "BAOCAO_KAFKA_BOOTSTRAP": f"127.0.0.1:{self.kafka_port}",
            "BAOCAO_MONGO_URI": f"mongodb://127.0.0.1:{self.mongo_port}/",
            "BAOCAO_SMTP_HOST": "127.0.0.1",
            "BAOCAO_SMTP_PORT": str(self.smtp_port),
            "BAOCAO_AUTH_PRIVATE_KEY_FILE": str(self.signing_key),
            "BAOCAO_AUTH_PUBLIC_KEY_FILE": str(self.verifying_key),
            # The local stack serves plain HTTP on 127.0.0.1: a Secure cookie would never
            # come back. Anywhere else the default (Secure) stands.
            "BAOCAO_COOKIE_SECURE": os.environ.get("BAOCAO_COOKIE_SECURE", "false"),
        }


# --- health probes --------------------------------------------------------------------------


def tcp_open(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (http only)
            return 200 <= response.status < 300
    except OSError:
        return False


def kafka_answers(port: int, timeout: float = 2.0) -> bool:
    """True when the port speaks Kafka: an ApiVersions v0 request gets error code 0.

    An open port is not enough: the socket accepts before the broker has joined its quorum.
    """
    client_id = b"baocao-stack"
    body = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            header = _recv_exact(sock, 10)
    except OSError:
        return False
    _size, correlation_id, error_code = struct.unpack(">iih", header)
    return correlation_id == 1 and error_code == 0


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data


# --- processes ------------------------------------------------------------------------------


def as_user(user: str | None) -> dict[str, object]:
    """subprocess keyword arguments that run a child as `user` (only needed when we are root)."""
    if user is None or os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise StackError(f"there is no system user '{user}' to run the server as") from None
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


@dataclass
class Process:
    """A long-running child we start in its own session and track by PID file."""

    name: str
    command: Callable[[], list[str]]
    healthy: Callable[[], bool]
    marker: str  # a string that must appear in /proc/<pid>/cmdline for the PID to be ours
    layout: Layout
    env: Callable[[], dict[str, str]] = dict
    prepare: Callable[[], None] = lambda: None
    urls: Callable[[], list[str]] = list
    start_timeout: float = 90.0
    user: str | None = None  # run as this system user when we are root
    stop_signal: int = signal.SIGTERM
    stop_group: bool = True  # signal the whole process group, not only the PID
    _child: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    """Set when this process object started it: its exit is then known without /proc guesses
    (a JVM that re-executes itself briefly shows an empty command line)."""

    @property
    def pid_file(self) -> Path:
        return self.layout.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.layout.log_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The PID from our PID file, if that process is alive and is still the one we started."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            return None
        return pid if self.marker in cmdline else None

    def running(self) -> bool:
        return self.pid() is not None

    def start(self) -> bool:
        """Start unless already running; True if this call started it."""
        if self.running():
            return False
        self.prepare()
        self.layout.run_dir.mkdir(parents=True, exist_ok=True)
        self.layout.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            log.write(f"\n--- started {time.strftime('%Y-%m-%dT%H:%M:%S%z')} ---\n".encode())
            log.flush()
            self._child = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=ROOT if self.user is None else "/",
                env={**os.environ, **self.env()},
                start_new_session=True,
                **as_user(self.user),
            )
        self.pid_file.write_text(str(self._child.pid))
        return True

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.healthy():
                return
            if self._exited():
                raise StackError(self._failure("exited during start-up"))
            time.sleep(0.3)
        raise StackError(self._failure(f"was not healthy after {self.start_timeout:.0f} s"))

    def _exited(self) -> bool:
        if self._child is not None:
            return self._child.poll() is not None
        return not self.running()

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the process (and its process group) we started; True if it was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        if self.stop_group:
            os.killpg(pid, self.stop_signal)
        else:
            os.kill(pid, self.stop_signal)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists() and self.pid():
            time.sleep(0.2)
        if self.pid():
            os.killpg(pid, signal.SIGKILL)
        if self._child is not None:  # reap it: no zombie left behind by a long test session
            self._child.wait(timeout=10)
            self._child = None
        self.pid_file.unlink(missing_ok=True)
        return True

    def _failure(self, what: str, lines: int = 25) -> str:
        try:
            tail = self.log_file.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            tail = ["(no log written)"]
        joined = "\n    ".join(tail)
        return (
            f"{self.name} {what}. Last lines of its log:\n    {joined}\nFull log: {self.log_file}"
        )

    def post_mortem(self) -> str:
        """What is known of a server that stopped answering: alive or not (its exit status when
        this object started it), its memory and open files, and its log's last lines."""
        pid = self.pid()
        if pid is None:
            code = self._child.poll() if self._child is not None else None
            state = "has exited" + (f" with status {code}" if code is not None else "")
        else:
            state = f"is alive but not answering (pid {pid}, {_proc_usage(pid)})"
        return self._failure(state, lines=60)


def _proc_usage(pid: int) -> str:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        rss = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))
        files = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, StopIteration):
        return "usage unknown"
    return f"RSS {int(rss) // 1024} MB, {files} open files"


# --- provisioning ---------------------------------------------------------------------------


def run(cmd: list[str], what: str, **kwargs: object) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()[-30:]
        raise StackError(f"{what} failed ({' '.join(cmd[:3])} ...):\n    " + "\n    ".join(output))


def require(tool: str, hint: str) -> str:
    # Go's installer puts it in /usr/local/go/bin, which a non-login shell may not have on PATH.
    path = shutil.which(tool) or shutil.which(tool, path="/usr/local/go/bin")
    if not path:
        raise StackError(f"'{tool}' is not on PATH: {hint}")
    return path


def provision_kafka(layout: Layout) -> None:
    lib = layout.kafka_lib
    if (lib / f"kafka_2.13-{KAFKA_VERSION}.jar").exists():
        return
    log(f"provisioning Kafka {KAFKA_VERSION} from Maven Central (once) ...")
    mvn = require("mvn", "install Maven (Debian package 'maven')")
    tmp = lib.with_name("lib.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    run(
        [
            mvn,
            "-B",
            "-q",
            "-f",
            str(HERE / "kafka" / "pom.xml"),
            f"-Dmaven.repo.local={layout.stack_dir / 'm2'}",
            f"-Dkafka.version={KAFKA_VERSION}",
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={tmp}",
        ],
        "downloading Kafka from Maven Central",
    )
    tmp.rename(lib)


def _ferretdb_version_file(source: Path, version: str) -> None:
    # `go install ...@v1.24.2` builds a binary that panics at start: the module zip lacks
    # build/version/version.txt (generated by FerretDB's own build).
    (source / "build" / "version" / "version.txt").write_text(version + "\n")


def _alertmanager_ui_placeholder(source: Path, version: str) -> None:
    # `go install ...@v0.35.0` does not compile: the web UI is embedded from ui/app/dist, which
    # its release build makes with npm and the module zip lacks. A page saying where the UI is
    # stands in for it; the API, routing and e-mail are untouched.
    page = (
        "<!doctype html><title>Alertmanager</title><p>This Alertmanager was built from the Go "
        "module, which has no web UI: use its API (/api/v2/alerts) or the UI of the "
        "docker-compose image.</p>\n"
    )
    for ui in ("elm", "mantine"):
        folder = source / "ui" / "app" / "dist" / ui
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "index.html").write_text(page)


MODULE_FIXES: dict[str, Callable[[Path, str], None]] = {
    "ferretdb": _ferretdb_version_file,
    "alertmanager": _alertmanager_ui_placeholder,
}
"""Go servers whose module zip cannot be built as it is, and the file(s) to write first."""


def provision_go_binary(layout: Layout, name: str, module: str, version: str, package: str) -> Path:
    """Build a Go server once from the module proxy into .stack/bin/<name>-<version>."""
    target = layout.bin_dir / f"{name}-{version}"
    if target.exists():
        return target
    go = require("go", "install Go 1.22+ (the machine image has it in /usr/local/go/bin)")
    log(f"building {name} {version} with Go (once) ...")
    env = go_env(layout)
    layout.bin_dir.mkdir(parents=True, exist_ok=True)
    if name in MODULE_FIXES:
        # Built from a copy of the module with the files its own build generates written in:
        # the binary is the unmodified server (see MODULE_FIXES).
        out = subprocess.run(
            [go, "mod", "download", "-json", f"{module}@{version}"],
            capture_output=True,
            text=True,
            env=env,
        )
        if out.returncode != 0:
            raise StackError(
                f"go mod download {module}@{version} failed:\n{out.stdout}{out.stderr}"
            )
        source = layout.stack_dir / "src" / f"{name}-{version}"
        shutil.rmtree(source, ignore_errors=True)
        shutil.copytree(json.loads(out.stdout)["Dir"], source)
        MODULE_FIXES[name](source, version)
        run([go, "build", "-o", str(target), package], f"building {name}", cwd=source, env=env)
    else:
        provision_go_commands(layout, module, version, {name: package}, go=go, env=env)
    return target


def provision_go_commands(
    layout: Layout,
    module: str,
    version: str,
    packages: dict[str, str],
    *,
    go: str,
    env: dict[str, str],
    tags: str = "",
) -> None:
    """`go install` several commands of one module at once (their shared packages build once);
    each lands in .stack/bin/<name>-<version>."""
    gobin = layout.stack_dir / "gobin" / f"{module.rsplit('/', 1)[-1]}-{version}"
    import_paths = [
        module if package == "." else f"{module}/{package.removeprefix('./')}"
        for package in packages.values()
    ]
    run(
        [go, "install", *(["-tags", tags] if tags else [])]
        + [f"{path}@{version}" for path in import_paths],
        f"building {', '.join(packages)}",
        env={**env, "GOBIN": str(gobin)},
    )
    for name in packages:
        built, target = gobin / name, layout.bin_dir / f"{name}-{version}"
        if built.exists() or not target.exists():  # another build may have just placed it
            os.replace(built, target)


def provision_debian_programs(layout: Layout, package: str) -> Path:
    """A Debian package's files unpacked into .stack/debian/<package>/ (``apt-get download``,
    ``dpkg-deb -x``): its programs without installing it, so no root and no service started.

    Returns its ``usr/bin``. Seconds, where building Prometheus from the Go module took the
    longest part of a cold start (16 CPU-minutes)."""
    programs = layout.debian_bin(package)
    if programs.is_dir():
        return programs
    root = programs.parents[1]
    apt, dpkg_deb = (
        require(tool, "a Debian-based machine (apt-get, dpkg-deb)")
        for tool in ("apt-get", "dpkg-deb")
    )
    partial = root.with_name(package + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    download = [apt, "download", package]
    if subprocess.run(download, cwd=partial, capture_output=True).returncode != 0:
        # A fresh machine has no package lists yet.
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        run([apt, "update"], "apt-get update", env=env)
        run(download, f"apt-get download {package}", cwd=partial)
    [deb] = partial.glob("*.deb")
    run([dpkg_deb, "-x", str(deb), str(partial / "files")], f"unpacking {deb.name}")
    log(f"{package} {deb.name.split('_')[1]} unpacked from Debian's package")
    shutil.rmtree(root, ignore_errors=True)
    (partial / "files").rename(root)
    shutil.rmtree(partial)
    return programs


def provision_alertmanager(layout: Layout) -> Path:
    return provision_go_binary(
        layout,
        "alertmanager",
        "github.com/prometheus/alertmanager",
        ALERTMANAGER_VERSION,
        "./cmd/alertmanager",
    )


@dataclass(frozen=True)
class Monitoring:
    prometheus: Path
    promtool: Path
    alertmanager: Path


def provision_monitoring(layout: Layout) -> Monitoring:
    """Prometheus, promtool and Alertmanager (for `make up` and the tests that need them).

    Not Debian's Alertmanager: it reads its default templates from /usr/share/prometheus,
    which an unpacked (not installed) package does not have."""
    prometheus = provision_debian_programs(layout, PROMETHEUS_PACKAGE)
    return Monitoring(
        prometheus=prometheus / "prometheus",
        promtool=prometheus / "promtool",
        alertmanager=provision_alertmanager(layout),
    )


def go_env(layout: Layout) -> dict[str, str]:
    return {
        **os.environ,
        "GOFLAGS": "-modcacherw",
        "GOMODCACHE": str(layout.stack_dir / "gomod"),
        "GOCACHE": str(layout.stack_dir / "gocache"),
        "CGO_ENABLED": "0",
    }


def postgres_major(bin_dir: Path) -> int:
    """12 for /usr/lib/postgresql/12/bin: the newest installed major version is preferred."""
    name = bin_dir.parent.name
    return int(name) if name.isdigit() else 0


def postgres_bin_dir(candidates: Iterable[Path] | None = None) -> Path | None:
    """The folder holding PostgreSQL's tools: the one on PATH first, then Debian's newest."""
    if candidates is None:
        on_path = shutil.which("initdb")
        debian = Path("/usr/lib/postgresql").glob("*/bin")
        candidates = [
            *([Path(on_path).resolve().parent] if on_path else []),
            *sorted(debian, key=postgres_major, reverse=True),
        ]
    for folder in candidates:
        if all((folder / tool).exists() for tool in POSTGRES_TOOLS):
            return folder
    return None


def provision_postgres() -> Path:
    """PostgreSQL's binaries, installing Debian's `postgresql` package once if missing."""
    found = postgres_bin_dir()
    if found:
        return found
    hint = "or choose BAOCAO_FERRETDB_BACKEND=sqlite"
    if os.geteuid() != 0:
        raise StackError(f"PostgreSQL is not installed: `apt-get install -y postgresql` {hint}")
    apt = require("apt-get", f"install PostgreSQL ({', '.join(POSTGRES_TOOLS)}) {hint}")
    log("installing Debian's postgresql package (once) ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run([apt, "update"], "apt-get update", env=env)
    # Recommends (sysstat, logrotate) serve a system-wide server; ours needs none of them.
    install = [apt, "install", "-y", "--no-install-recommends", "postgresql"]
    run(install, "apt-get install postgresql", env=env)
    found = postgres_bin_dir()
    if not found:
        raise StackError("the postgresql package is installed but initdb/postgres were not found")
    return found


def provision_signing_key(layout: Layout) -> None:
    """The Ed25519 key pair sign-in tokens are signed with, made once, private half 0600."""
    if layout.signing_key.exists() and layout.verifying_key.exists():
        return
    openssl = require("openssl", "install openssl (Debian: apt-get install openssl)")
    layout.signing_key.parent.mkdir(parents=True, exist_ok=True)
    old_umask = os.umask(0o077)
    try:
        run(
            [openssl, "genpkey", "-algorithm", "ed25519", "-out", str(layout.signing_key)],
            "making the sign-in key",
        )
    finally:
        os.umask(old_umask)
    run(
        [
            openssl,
            "pkey",
            "-in",
            str(layout.signing_key),
            "-pubout",
            "-out",
            str(layout.verifying_key),
        ],
        "its public half",
    )


TEST_TOOLS = {
    "chromium": "/usr/bin/chromium",  # browser tests (Playwright cannot download one here)
    "libreoffice-writer-nogui": "/usr/bin/soffice",  # the district report as PDF
    "poppler-utils": "/usr/bin/pdftoppm",  # its first page as PNG, for people to look at
}


def provision_test_tools() -> None:
    """Debian packages the tests drive; installed once, where missing."""
    missing = [package for package, path in TEST_TOOLS.items() if not Path(path).exists()]
    if not missing:
        return
    apt = require("apt-get", f"install {' '.join(missing)} (as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run([apt, "update"], "apt-get update", env=env)
    run(
        [apt, "install", "-y", "--no-install-recommends", *missing],
        f"apt-get install {' '.join(missing)}",
        env=env,
    )


def create_demo_accounts(layout: Layout) -> None:
    """Development only: one account per role, random passwords, listed in a 0600 file."""
    python = os.environ.get("BAOCAO_PYTHON", str(ROOT / ".venv" / "bin" / "python"))
    result = subprocess.run(
        [python, "-m", "services.submissions.admin", "demo", "--out", str(layout.demo_accounts)],
        capture_output=True,
        text=True,
        env={**os.environ, **layout.service_env()},
        cwd=ROOT,
    )
    if result.returncode != 0:
        raise StackError(f"demo accounts: {result.stderr.strip()}")
    log(f"demo accounts (development profile), also in {layout.demo_accounts} (0600):")
    print(result.stdout, end="")


def provision(layout: Layout, *, for_tests: bool = False, monitoring: bool = False) -> None:
    """Everything missing, side by side: downloads overlap with builds, and a cold start waits
    for the longest step instead of the sum of all of them.

    ``monitoring``: Prometheus, promtool and Alertmanager too (`make up`, `make test`); the
    test fixtures that only need the servers leave them out."""
    provision_signing_key(layout)

    def debian_packages() -> None:  # one apt at a time: they share dpkg's and the lists' locks
        if monitoring:
            provision_debian_programs(layout, PROMETHEUS_PACKAGE)
        if for_tests:
            provision_test_tools()
        if layout.ferretdb_backend == "postgresql":
            provision_postgres()

    steps: dict[str, Callable[[], object]] = {
        "Kafka": lambda: provision_kafka(layout),
        "FerretDB": lambda: provision_go_binary(
            layout, "ferretdb", "github.com/FerretDB/FerretDB", FERRETDB_VERSION, "./cmd/ferretdb"
        ),
        "Mailpit": lambda: provision_go_binary(
            layout, "mailpit", "github.com/axllent/mailpit", MAILPIT_VERSION, "."
        ),
        "Debian packages": debian_packages,
    }
    if monitoring:
        steps["Alertmanager"] = lambda: provision_alertmanager(layout)
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(steps)) as pool:
        running = {name: pool.submit(step) for name, step in steps.items()}
    failures = [f"{name}: {f.exception()}" for name, f in running.items() if f.exception()]
    if failures:
        raise StackError("provisioning failed:\n" + "\n".join(failures))


# --- the servers ----------------------------------------------------------------------------


def java_binary() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = (
        str(Path(java_home) / "bin" / "java") if java_home else require("java", "install a JDK 17+")
    )
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    try:
        major = int(out.split('"')[1].split(".")[0])
    except (IndexError, ValueError):
        major = 0
    if major < 17:
        raise StackError(
            f"Kafka {KAFKA_VERSION} needs Java 17 or newer; {java} says: {out.strip()}"
        )
    return java


def kafka_cluster_id() -> str:
    # The same format as `kafka-storage random-uuid`, without starting a JVM for it.
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def kafka_process(layout: Layout) -> Process:
    data = layout.data_dir / "kafka"
    config = layout.run_dir / "kafka-server.properties"
    log4j = HERE / "kafka" / "log4j2.properties"

    def java_cmd(main: str, *args: str) -> list[str]:
        return [
            java_binary(),
            *layout.kafka_heap.split(),
            "-cp",
            f"{layout.kafka_lib}/*",
            f"-Dlog4j2.configurationFile={log4j}",
            main,
            *args,
        ]

    def prepare() -> None:
        layout.run_dir.mkdir(parents=True, exist_ok=True)
        template = (HERE / "kafka" / "server.properties.in").read_text()
        config.write_text(
            template.replace("@PORT@", str(layout.kafka_port))
            .replace("@CONTROLLER_PORT@", str(layout.kafka_controller_port))
            .replace("@DATA_DIR@", str(data))
        )
        if not (data / "meta.properties").exists():
            data.mkdir(parents=True, exist_ok=True)
            run(
                java_cmd(
                    "kafka.tools.StorageTool",
                    "format",
                    f"--cluster-id={kafka_cluster_id()}",
                    "-c",
                    str(config),
                ),
                "formatting Kafka storage",
            )

    return Process(
        name="kafka",
        command=lambda: java_cmd("kafka.Kafka", str(config)),
        healthy=lambda: kafka_answers(layout.kafka_port),
        marker="kafka.Kafka",
        layout=layout,
        prepare=prepare,
        urls=lambda: [f"kafka       127.0.0.1:{layout.kafka_port}"],
    )


def postgres_command(bin_dir: Path, layout: Layout) -> list[str]:
    return [
        str(bin_dir / "postgres"),
        "-D",
        str(layout.data_dir / "postgres"),
        "-k",
        str(layout.run_dir / "postgres"),
        "-h",
        "127.0.0.1",
        "-p",
        str(layout.postgres_port),
    ]


def initdb_command(bin_dir: Path, data: Path) -> list[str]:
    # Trust: no password, like the stack's Kafka and FerretDB. The server listens on 127.0.0.1
    # only and its socket folder is private; this is a development server, not a shared one.
    return [
        str(bin_dir / "initdb"),
        "-D",
        str(data),
        f"--username={POSTGRES_USER}",
        "--auth=trust",
        "--encoding=UTF8",
        "--locale=C",
    ]


def postgres_client_args(layout: Layout) -> list[str]:
    """Where pg_isready, psql and createdb find our server (over TCP, as its superuser)."""
    return ["-h", "127.0.0.1", "-p", str(layout.postgres_port), "-U", POSTGRES_USER]


def unreachable_folders(path: Path) -> list[Path]:
    """Ancestors of `path` that other users cannot enter (so the postgres user cannot either)."""
    return [p for p in path.parents if p.exists() and not p.stat().st_mode & 0o001]


def chown_to(path: Path, user: str) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def postgres_process(layout: Layout) -> Process:
    data = layout.data_dir / "postgres"
    sockets = layout.run_dir / "postgres"

    def bin_dir() -> Path:
        found = postgres_bin_dir()
        if not found:
            raise StackError("PostgreSQL's binaries are missing: run `provision` first")
        return found

    def prepare() -> None:
        blocked = unreachable_folders(data) if os.geteuid() == 0 else []
        if blocked:
            raise StackError(
                f"the '{POSTGRES_USER}' user cannot enter {blocked[0]}: choose a BAOCAO_DATA_DIR "
                "it can reach (every parent folder needs o+x)"
            )
        for folder in (data, sockets):
            folder.mkdir(parents=True, exist_ok=True)
            chown_to(folder, POSTGRES_USER)
            folder.chmod(0o700)  # PostgreSQL refuses a data folder others can read
        if not (data / "PG_VERSION").exists():
            log(f"initialising PostgreSQL data in {data} (once) ...")
            run(initdb_command(bin_dir(), data), "initdb", cwd="/", **as_user(POSTGRES_USER))

    def healthy() -> bool:
        folder = postgres_bin_dir()
        if folder is None:
            return False
        ready = [str(folder / "pg_isready"), "-q", "-t", "2", *postgres_client_args(layout)]
        return subprocess.run(ready).returncode == 0

    return Process(
        name="postgres",
        command=lambda: postgres_command(bin_dir(), layout),
        healthy=healthy,
        marker=f"-D {data} ",
        layout=layout,
        prepare=prepare,
        urls=lambda: [f"postgres    {layout.postgresql_url()}  (FerretDB's storage)"],
        user=POSTGRES_USER,
        # SIGINT to the postmaster alone is PostgreSQL's "fast" shutdown: it stops its own
        # children in order. (SIGTERM would wait for every client to disconnect.)
        stop_signal=signal.SIGINT,
        stop_group=False,
    )


def ensure_postgres_database(layout: Layout) -> None:
    """Create FerretDB's database once (FerretDB creates its tables, not the database)."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise StackError("PostgreSQL's binaries are missing: run `provision` first")
    server = postgres_client_args(layout)
    databases = subprocess.run(
        [
            str(bin_dir / "psql"),
            *server,
            "-d",
            "postgres",
            "-tAc",
            "SELECT datname FROM pg_database",
        ],
        capture_output=True,
        text=True,
    )
    if databases.returncode != 0:
        raise StackError(f"psql could not list PostgreSQL's databases:\n{databases.stderr}")
    if POSTGRES_DATABASE not in databases.stdout.split():
        run(
            [str(bin_dir / "createdb"), *server, POSTGRES_DATABASE],
            f"creating the {POSTGRES_DATABASE} database",
        )


def ferretdb_command(layout: Layout, binary: Path) -> list[str]:
    data = layout.data_dir / "ferretdb"
    if layout.ferretdb_backend == "postgresql":
        storage = ["--handler=postgresql", f"--postgresql-url={layout.postgresql_url()}"]
    else:
        storage = ["--handler=sqlite", f"--sqlite-url=file:{data}/"]
    return [
        str(binary),
        *storage,
        f"--listen-addr=127.0.0.1:{layout.mongo_port}",
        "--telemetry=disable",
        f"--state-dir={data}",
        f"--debug-addr=127.0.0.1:{layout.ferretdb_debug_port}",
        "--log-level=warn",
    ]


def mongodb_line(layout: Layout) -> str:
    backend = (
        f"PostgreSQL 127.0.0.1:{layout.postgres_port}"
        if layout.ferretdb_backend == "postgresql"
        else "SQLite"
    )
    return f"mongodb     mongodb://127.0.0.1:{layout.mongo_port}/  (FerretDB, {backend})"


def handler_of(cmdline: str) -> str | None:
    """The --handler a running FerretDB was started with, read from its command line."""
    for word in cmdline.split():
        if word.startswith("--handler="):
            return word.removeprefix("--handler=")
    return None


def ferretdb_process(layout: Layout, postgres: Process) -> Process:
    data = layout.data_dir / "ferretdb"
    binary = layout.bin_dir / f"ferretdb-{FERRETDB_VERSION}"

    def prepare() -> None:
        data.mkdir(parents=True, exist_ok=True)
        if layout.ferretdb_backend == "postgresql":
            if not postgres.running():
                raise StackError("FerretDB's PostgreSQL is not running: start postgres first")
            postgres.wait_healthy()
            ensure_postgres_database(layout)

    return Process(
        name="ferretdb",
        command=lambda: ferretdb_command(layout, binary),
        healthy=lambda: (
            tcp_open(layout.mongo_port)
            and http_ok(f"http://127.0.0.1:{layout.ferretdb_debug_port}/debug/readyz")
        ),
        marker=binary.name,
        layout=layout,
        prepare=prepare,
        urls=lambda: [mongodb_line(layout)],
    )


def check_ferretdb_backend(layout: Layout, ferretdb: Process) -> None:
    """Refuse to reuse a running FerretDB that stores its data in the other backend."""
    pid = ferretdb.pid()
    if pid is None:
        return
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    running = handler_of(cmdline)
    if running != layout.ferretdb_backend:
        raise StackError(
            f"FerretDB is running on the {running} backend, not {layout.ferretdb_backend} "
            "(BAOCAO_FERRETDB_BACKEND): `make down` first; each backend keeps its own data"
        )


def mailpit_process(layout: Layout) -> Process:
    data = layout.data_dir / "mailpit"
    binary = layout.bin_dir / f"mailpit-{MAILPIT_VERSION}"
    return Process(
        name="mailpit",
        command=lambda: [
            str(binary),
            "--smtp",
            f"127.0.0.1:{layout.smtp_port}",
            "--listen",
            f"127.0.0.1:{layout.mailpit_port}",
            "--database",
            str(data / "mailpit.db"),
            "--smtp-auth-accept-any",
            "--smtp-auth-allow-insecure",
            "--disable-version-check",
        ],
        healthy=lambda: (
            tcp_open(layout.smtp_port) and http_ok(f"http://127.0.0.1:{layout.mailpit_port}/readyz")
        ),
        marker=binary.name,
        layout=layout,
        prepare=lambda: data.mkdir(parents=True, exist_ok=True),
        urls=lambda: [
            f"smtp        127.0.0.1:{layout.smtp_port}",
            f"mailpit     http://127.0.0.1:{layout.mailpit_port}/  (inbox UI and API)",
        ],
    )


def service_process(layout: Layout, service: str) -> Process:
    port = layout.service_port(service)
    python = os.environ.get("BAOCAO_PYTHON", str(ROOT / ".venv" / "bin" / "python"))
    return Process(
        name=service,
        command=lambda: [python, "-m", f"services.{service}"],
        healthy=lambda: http_ok(f"http://127.0.0.1:{port}/readyz"),
        marker=f"services.{service}",
        layout=layout,
        env=layout.service_env,
        urls=lambda: [f"{service:<12}http://127.0.0.1:{port}/  (/healthz /readyz /metrics)"],
        start_timeout=60.0,
    )


def prometheus_config(layout: Layout) -> str:
    """prometheus.local.yml with this stack's ports, the rules file's absolute path and, if
    the layout says so, another scrape and evaluation interval."""
    text = (PROMETHEUS_DIR / "prometheus.local.yml").read_text(encoding="utf-8")
    ports = {
        **{Layout.default_service_port(s): layout.service_port(s) for s in SERVICES},
        8088: layout.ferretdb_debug_port,
        9090: layout.prometheus_port,
        9094: layout.alertmanager_port,
    }

    def moved(match: re.Match[str]) -> str:
        default = int(match.group(1))
        if default not in ports:
            raise StackError(f"prometheus.local.yml: no stack port for 127.0.0.1:{default}")
        return f'"127.0.0.1:{ports[default]}"'

    # One pass over the file: replacing one port after another would chain (8001 -> 8002,
    # then 8002 -> 8003 ...) when the moved ports overlap the defaults.
    text = re.sub(r'"127\.0\.0\.1:(\d+)"', moved, text)
    if layout.scrape_interval:
        text, changed = re.subn(
            r"^(  (?:scrape|evaluation)_interval:) \S+$",
            lambda m: f"{m.group(1)} {layout.scrape_interval}",
            text,
            flags=re.MULTILINE,
        )
        if changed != 2:
            raise StackError("prometheus.local.yml: its global scrape/evaluation_interval moved")
    return text.replace("- alerts.yml", f"- {PROMETHEUS_DIR / 'alerts.yml'}")


def alertmanager_config(
    template: str, *, smarthost: str, operators: str, office: str, runbook_base: str
) -> str:
    """alertmanager.yml with the SMTP server, the operators' and the office's addresses and
    the runbook links' base filled in (Alertmanager reads no environment variables;
    docker-compose fills in the same four with sed)."""
    return (
        template.replace("@SMTP_SMARTHOST@", smarthost)
        .replace("@OPERATORS_EMAIL@", operators)
        .replace("@OFFICE_EMAIL@", office)
        .replace("@RUNBOOK_BASE_URL@", runbook_base.rstrip("/"))
    )


def office_addresses(plan_files: Iterable[Path]) -> str:
    """The e-mail contacts of the consolidating unit of every plan (plan data): who the
    office's alerts reach unless BAOCAO_OFFICE_ALERT_EMAIL says otherwise."""
    from contracts.plan.loading import load  # the plan model only when Alertmanager starts

    found: list[str] = []
    for path in plan_files:
        plan = load(path)
        office = plan.unit(plan.consolidating_unit_id)
        for contact in office.contacts if office else []:
            if contact.email and contact.email not in found:
                found.append(contact.email)
    return ", ".join(found)


def prometheus_process(layout: Layout) -> Process:
    binary = layout.debian_bin(PROMETHEUS_PACKAGE) / "prometheus"
    config = layout.run_dir / "prometheus.yml"
    data = layout.data_dir / "prometheus"

    def prepare() -> None:
        data.mkdir(parents=True, exist_ok=True)
        layout.run_dir.mkdir(parents=True, exist_ok=True)
        config.write_text(prometheus_config(layout), encoding="utf-8")

    url = f"http://127.0.0.1:{layout.prometheus_port}"
    return Process(
        name="prometheus",
        command=lambda: [
            str(binary),
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            "--storage.tsdb.retention.time=15d",
            f"--web.listen-address=127.0.0.1:{layout.prometheus_port}",
        ],
        healthy=lambda: http_ok(f"{url}/-/ready"),
        marker=str(binary),  # "prometheus" is also in the other one's path
        layout=layout,
        prepare=prepare,
        urls=lambda: [
            f"prometheus  {url}/  (HTTP API: /api/v1/targets, /api/v1/alerts; "
            "the web UI comes with docker-compose)"
        ],
    )


def alertmanager_process(layout: Layout) -> Process:
    binary = layout.bin_dir / f"alertmanager-{ALERTMANAGER_VERSION}"
    config = layout.run_dir / "alertmanager.yml"
    data = layout.data_dir / "alertmanager"

    def prepare() -> None:
        data.mkdir(parents=True, exist_ok=True)
        layout.run_dir.mkdir(parents=True, exist_ok=True)
        template = (PROMETHEUS_DIR / "alertmanager.yml").read_text(encoding="utf-8")
        config.write_text(
            alertmanager_config(
                template,
                smarthost=f"127.0.0.1:{layout.smtp_port}",
                operators=layout.operators_email,
                office=layout.office_alert_email
                or office_addresses(layout.plan_files)
                or layout.operators_email,
                runbook_base=layout.runbook_base_url,
            ),
            encoding="utf-8",
        )

    url = f"http://127.0.0.1:{layout.alertmanager_port}"
    return Process(
        name="alertmanager",
        command=lambda: [
            str(binary),
            f"--config.file={config}",
            f"--storage.path={data}",
            f"--web.listen-address=127.0.0.1:{layout.alertmanager_port}",
            "--cluster.listen-address=",  # one instance: no gossip port (default 9094)
        ],
        healthy=lambda: http_ok(f"{url}/-/ready"),
        marker=str(binary),  # "prometheus" is also in the other one's path
        layout=layout,
        prepare=prepare,
        urls=lambda: [
            f"alertmanager {url}/  (e-mails {layout.operators_email} through "
            f"127.0.0.1:{layout.smtp_port})"
        ],
    )


def servers(layout: Layout, *, every_backend: bool = False) -> dict[str, Process]:
    """The servers in start order (stopped in reverse): PostgreSQL before the FerretDB on it.

    PostgreSQL is in the list when it is the chosen backend, or always with `every_backend`
    (to stop or inspect a stack that was started with the other choice).
    """
    postgres = postgres_process(layout)
    chosen = [kafka_process(layout)]
    if every_backend or layout.ferretdb_backend == "postgresql":
        chosen.append(postgres)
    chosen += [ferretdb_process(layout, postgres), mailpit_process(layout)]
    return {p.name: p for p in chosen}


def everything(layout: Layout, *, every_backend: bool = False) -> dict[str, Process]:
    return {
        **servers(layout, every_backend=every_backend),
        **{s: service_process(layout, s) for s in SERVICES},
        # Alertmanager first: Prometheus sends it alerts from its first evaluation on.
        "alertmanager": alertmanager_process(layout),
        "prometheus": prometheus_process(layout),
    }


# --- commands -------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[stack] {message}", file=sys.stderr, flush=True)


def start_all(processes: Iterable[Process]) -> list[str]:
    """Start what is not running, wait until all are healthy; return the names started here."""
    processes = list(processes)
    started = [p.name for p in processes if p.start()]
    for p in processes:
        p.wait_healthy()
        log(f"{p.name:<12} healthy" + ("" if p.name in started else " (was already running)"))
    return started


def stop_all(processes: Iterable[Process]) -> None:
    for p in reversed(list(processes)):
        if p.stop():
            log(f"{p.name:<12} stopped")


def select(table: dict[str, Process], names: list[str]) -> list[Process]:
    unknown = set(names) - set(table)
    if unknown:
        raise StackError(f"unknown name(s) {sorted(unknown)}; known: {sorted(table)}")
    return [table[n] for n in names] if names else list(table.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local.stack", description=__doc__)
    parser.add_argument(
        "command", choices=["up", "down", "status", "provision", "clean-data", "start", "stop"]
    )
    parser.add_argument("names", nargs="*", help="servers or services (default: all)")
    parser.add_argument("--servers-only", action="store_true", help="up: not the services")
    parser.add_argument(
        "--for-tests",
        action="store_true",
        help="provision: also what the tests need (chromium, LibreOffice)",
    )
    args = parser.parse_args(argv)
    started_at = time.monotonic()
    try:
        layout = Layout()
        table = everything(layout)
        # down, status and clean-data also see a PostgreSQL started under the other choice
        known = everything(layout, every_backend=True)
        if args.command == "provision":
            provision(layout, for_tests=args.for_tests, monitoring=True)
        elif args.command in ("up", "start"):
            provision(layout, monitoring=not args.servers_only)
            chosen = select(servers(layout) if args.servers_only else table, args.names)
            if "ferretdb" in {p.name for p in chosen}:
                check_ferretdb_backend(layout, table["ferretdb"])
            # Servers first: a service connects to Kafka and MongoDB as it starts.
            start_all(p for p in chosen if p.name not in (*SERVICES, *MONITORING))
            start_all(p for p in chosen if p.name in SERVICES)
            start_all(p for p in chosen if p.name in MONITORING)
            log(f"all healthy in {time.monotonic() - started_at:.1f} s:")
            for p in chosen:
                for url in p.urls():
                    print(f"  {url}")
            print(f"  logs        {layout.log_dir}/")
            development = os.environ.get("BAOCAO_PROFILE", "development") == "development"
            if development and "submissions" in {p.name for p in chosen}:
                create_demo_accounts(layout)
        elif args.command in ("down", "stop"):
            stop_all(select(known, args.names))
        elif args.command == "status":
            for p in known.values():
                pid = p.pid()
                if p.name not in table and pid is None:
                    continue  # the backend not chosen, and not running: nothing to say
                state = f"running (pid {pid})" if pid else "stopped"
                health = "healthy" if pid and p.healthy() else "-"
                print(f"{p.name:<12} {state:<22} {health}")
        elif args.command == "clean-data":
            if any(p.running() for p in known.values()):
                raise StackError(
                    "stop the stack first (make down); data is not removed under a live server"
                )
            shutil.rmtree(layout.data_dir, ignore_errors=True)
            log(f"removed {layout.data_dir}")
    except StackError as error:
        log(f"FAILED: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
