"""Throw-away PostgreSQL, Redis and NATS servers for the test suite (pure stdlib).

Usage::

    with PostgresServer(tmp_dir) as pg, RedisServer(tmp_dir) as rd:
        pg.url  # postgresql+asyncpg://postgres@127.0.0.1:PORT/krypton
        pg.dsn  # postgresql://postgres@127.0.0.1:PORT/krypton
        pg.create_database("t1")  # -> url of a fresh, empty database
        rd.url  # redis://127.0.0.1:PORT/0

    with NatsServer(tmp_dir) as nt:
        nt.url  # nats://127.0.0.1:PORT, JetStream on, its store in tmp_dir

Missing binaries raise ``ServerUnavailable`` (a fixture may skip on it unless
``in_ci()``); anything that goes wrong while starting raises
``ServerStartError`` with the tail of the server log. Server output goes to log
files in ``base_dir``; nothing is printed on success.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Protocol, Self, TypeVar

START_TIMEOUT = 30.0  # seconds to wait for a server to accept connections
STOP_TIMEOUT = 10.0
HOST = "127.0.0.1"

Proc = subprocess.Popen[bytes]


class ServerUnavailable(RuntimeError):
    """The server software is not installed (run scripts/install-system-deps.sh)."""


class ServerStartError(RuntimeError):
    """The server is installed but could not be started."""


def in_ci() -> bool:
    """True on CI, where a server that can't start must fail the run, never skip."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


class _Server(Protocol):
    def start(self) -> Self: ...
    def stop(self) -> None: ...


ServerT = TypeVar("ServerT", bound=_Server)


@contextmanager
def running(server: ServerT, software: str) -> Iterator[ServerT]:
    """`server` started for the block and stopped after it. Where `software` is not
    installed the test is skipped, except on CI, where that fails the run."""
    import pytest  # here: the benchmarks import this module without pytest's machinery

    try:
        server.start()
    except ServerUnavailable as exc:
        if in_ci():
            raise
        pytest.skip(f"{software} is not installed here: {exc}")
    try:
        yield server
    finally:
        server.stop()


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (racy by nature; the servers retry on EADDRINUSE)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


_PG_TOOLS = ("initdb", "pg_ctl", "postgres", "pg_isready", "createdb", "dropdb")


def find_pg_bin() -> Path:
    """Directory holding initdb / pg_ctl / postgres (and the client tools we use).

    Order: $KRYPTON_PG_BIN, the highest /usr/lib/postgresql/<ver>/bin (Debian keeps
    server binaries off PATH), then PATH with symlinks resolved (this machine has
    /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb).
    """

    def version(d: Path) -> tuple[int, ...]:  # ".../15/bin" -> (15,), "9.6" -> (9, 6)
        return tuple(int(p) for p in d.parent.name.split(".") if p.isdigit())

    candidates = [Path(env)] if (env := os.environ.get("KRYPTON_PG_BIN")) else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for exe in ("postgres", "initdb"):
        if found := shutil.which(exe):
            candidates.append(Path(found).resolve().parent)
    for d in candidates:
        if all((d / exe).is_file() for exe in _PG_TOOLS):
            return d
    raise ServerUnavailable("PostgreSQL server binaries not found; run scripts/install-system-deps.sh")


# ----------------------------------------------------------------------- helpers


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _die_with_parent(cmd: list[str], signame: str) -> list[str]:
    """Prefix `cmd` so the kernel sends `signame` to the server if the test process
    dies (e.g. SIGKILLed by a CI timeout): no orphan keeps running and holding its
    port. setpriv (util-linux, always present on Debian) sets PR_SET_PDEATHSIG and
    execs the server in place, so the pid stays the same. Linux only; elsewhere the
    command runs as is. The "parent" is the thread that started the server."""
    setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
    return [setpriv, f"--pdeathsig={signame}", "--", *cmd] if setpriv else cmd


def _stop(proc: Proc | None, sig: int) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wait_ready(name: str, proc: Proc, ready: Callable[[], bool], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise ServerStartError(f"{name} exited with code {proc.returncode}; log {log}:\n{_tail(log)}")
        if ready():
            return
        if time.monotonic() > deadline:
            raise ServerStartError(f"{name} not ready after {timeout:.0f}s; log {log}:\n{_tail(log)}")
        time.sleep(0.05)


def _spawn_on_free_port(
    name: str,
    spawn: Callable[[int], Proc],
    ready: Callable[[int], bool],
    log: Path,
    timeout: float,
) -> tuple[Proc, int]:
    """Start a server on a free port. If another process grabbed the port between
    free_port() and the server's bind() (parallel test runs), retry with a new one."""
    for attempt in range(3):
        port = free_port()
        proc = spawn(port)
        try:
            _wait_ready(name, proc, partial(ready, port), log, timeout)
            return proc, port
        except ServerStartError as exc:
            _stop(proc, signal.SIGKILL)
            if attempt == 2 or "already in use" not in str(exc):
                raise
    raise AssertionError("unreachable")


def _user_kwargs(user: pwd.struct_passwd | None) -> dict[str, object]:
    """Popen kwargs running the child as `user`, without root's supplementary groups."""
    if user is None:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _popen(cmd: list[str], log: Path, user: pwd.struct_passwd | None = None, **kw: object) -> Proc:
    with log.open("ab") as out:  # the child keeps its own copy of the fd
        return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            **_user_kwargs(user),
            **kw,
        )


# -------------------------------------------------------------------- PostgreSQL


class _ServerProcess:
    """A test server run as a child process: `with Server(...) as s:` starts and stops it;
    `stop` ends the process with SIGTERM unless a subclass knows better."""

    _proc: Proc | None

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        _stop(self._proc, signal.SIGTERM)
        self._proc = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class PostgresServer(_ServerProcess):
    """A private PostgreSQL cluster on 127.0.0.1:<free port>, deleted on exit.

    PostgreSQL refuses to run as root, so when we are root the cluster is
    initialised and run as the ``postgres`` OS account (``nobody`` if absent).
    """

    # Role created by initdb. Auth is "trust", so any OS user may connect as it.
    superuser = "postgres"

    def __init__(
        self,
        base_dir: Path,
        *,
        database: str = "krypton",
        timeout: float = START_TIMEOUT,
    ) -> None:
        self.base_dir = Path(base_dir)
        self.database = database
        self.timeout = timeout
        self.host = HOST
        self.port: int | None = None
        self.log_path = self.base_dir / "postgres.log"
        self._proc: Proc | None = None
        self._spawn: Callable[[int], Proc] | None = None
        self._root: Path | None = None  # holds data/ and sock/; removed on stop
        self._bin = Path()
        self._os_user = self._pick_os_user()
        # PG* variables of a developer's shell must not redirect our client tools.
        self._env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        self._env["LC_ALL"] = "C"

    # -- public API

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def data_dir(self) -> Path | None:
        return self._root / "data" if self._root else None

    def dsn_for(self, database: str) -> str:
        return f"postgresql://{self.superuser}@{self.host}:{self.port}/{database}"

    def url_for(self, database: str) -> str:
        """SQLAlchemy URL (asyncpg driver) of `database` on this server."""
        return "postgresql+asyncpg" + self.dsn_for(database).removeprefix("postgresql")

    @property
    def dsn(self) -> str:
        return self.dsn_for(self.database)

    @property
    def url(self) -> str:
        return self.url_for(self.database)

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create database `name` and return its url. Cloning a `template` (e.g. an
        already-migrated database) is much faster than re-running migrations; the
        template must have no open connections."""
        self._client("createdb", *(["-T", template] if template else []), name)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        # --force terminates sessions still connected to it.
        self._client("dropdb", "--force", "--if-exists", name)

    def start(self) -> Self:
        """Start the server; a no-op if it is running (so `with s.start():` works)."""
        if self._proc is not None:
            return self
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        # SIGQUIT is exactly what `pg_ctl stop -m immediate` sends; signalling our own
        # child directly also reaps it. No shutdown checkpoint: the data is discarded.
        _stop(self._proc, signal.SIGQUIT)
        self._proc = None
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def kill(self) -> None:
        """Stop the server, keeping its data: an outage (`revive` ends it). A fast shutdown
        (SIGINT): sessions are cut, and what was committed is on disk despite fsync=off."""
        _stop(self._proc, signal.SIGINT)
        self._proc = None

    def revive(self) -> None:
        """Start the killed server again on the same port, with the same data."""
        assert self.port is not None and self._spawn is not None, "server never started"
        self._proc = self._spawn(self.port)
        _wait_ready("postgres", self._proc, partial(self._ready, self.port), self.log_path,
                    self.timeout)

    # -- internals

    @staticmethod
    def _pick_os_user() -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None  # run as ourselves
        for name in ("postgres", "nobody"):
            try:
                return pwd.getpwnam(name)
            except KeyError:
                pass
        raise ServerUnavailable("running as root, but no 'postgres'/'nobody' account")

    def _make_root(self) -> Path:
        """Directory for the data dir and the unix socket, owned by the server's user.

        Normally inside base_dir; a fresh dir under /tmp instead when (a) the
        unprivileged user can't reach base_dir -- pytest's tmp dirs live under
        /tmp/pytest-of-root, mode 0700 -- or (b) the path is too long for a unix
        socket (~107 bytes with '/sock/.s.PGSQL.NNNNN'), which makes postgres exit.
        """
        root = Path(tempfile.mkdtemp(prefix="pg-", dir=self.base_dir))
        if self._usable(root):
            return root
        shutil.rmtree(root)
        root = Path(tempfile.mkdtemp(prefix="krypton-pg-", dir="/tmp"))
        if not self._usable(root):
            shutil.rmtree(root)
            raise ServerStartError(f"{self._os_user} cannot write to {root}")
        return root

    def _usable(self, root: Path) -> bool:
        if len(str(root)) > 80:
            return False
        if self._os_user is None:
            return True
        os.chown(root, self._os_user.pw_uid, self._os_user.pw_gid)
        probe = ["test", "-w", str(root)]  # checked as that user: needs x on parents
        return self._run(probe, self.base_dir / "initdb.log", as_server=True) == 0

    def _run(self, cmd: list[str], log: Path, *, as_server: bool = False) -> int:
        user = self._os_user if as_server else None
        proc = _popen(cmd, log, user, env=self._env)
        return proc.wait()

    def _check(self, cmd: list[str], log: Path, *, as_server: bool = False) -> None:
        if rc := self._run(cmd, log, as_server=as_server):
            name = Path(cmd[0]).name
            raise ServerStartError(f"{name} failed ({rc}); log {log}:\n{_tail(log)}")

    def _client(self, tool: str, *args: str) -> None:
        assert self.port, "server not started"
        conn = ["-h", self.host, "-p", str(self.port), "-U", self.superuser]
        self._check([str(self._bin / tool), *conn, *args], self.base_dir / "pg-client.log")

    def _ready(self, port: int) -> bool:
        # A bare TCP connect succeeds while postgres still answers "starting up";
        # pg_isready exits 0 only once it really accepts sessions.
        probe = [str(self._bin / "pg_isready"), "-q", "-t", "1"]
        probe += ["-h", self.host, "-p", str(port), "-U", self.superuser]
        return self._run(probe, Path(os.devnull)) == 0

    def _start(self) -> None:
        self._bin = find_pg_bin()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self._root = root = self._make_root()
        data, sock = root / "data", root / "sock"
        sock.mkdir()
        if self._os_user:
            os.chown(sock, self._os_user.pw_uid, self._os_user.pw_gid)

        # --no-sync: nothing here must survive a crash. --no-locale: C collation,
        # identical on every machine.
        initdb = [str(self._bin / "initdb"), "-D", str(data), "-U", self.superuser]
        initdb += ["--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"]
        self._check(initdb, self.base_dir / "initdb.log", as_server=True)

        settings = {
            "listen_addresses": self.host,  # loopback only
            "unix_socket_directories": str(sock),
            "max_connections": "200",
            # Durability off: a test database is disposable, and this is much faster.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }

        def spawn(port: int) -> Proc:
            cmd = [str(self._bin / "postgres"), "-D", str(data), "-p", str(port)]
            for key, value in settings.items():
                cmd += ["-c", f"{key}={value}"]
            cmd = _die_with_parent(cmd, "SIGQUIT")  # immediate shutdown
            return _popen(cmd, self.log_path, self._os_user, env=self._env)

        self._spawn = spawn
        self._proc, self.port = _spawn_on_free_port(
            "postgres", spawn, self._ready, self.log_path, self.timeout
        )
        self.create_database(self.database)


# ------------------------------------------------------------------------- Redis


class RedisServer(_ServerProcess):
    """A non-persistent redis-server on 127.0.0.1:<free port>; with `cluster`, a one-node
    Redis Cluster holding every slot (`url` is then redis+cluster://)."""

    def __init__(self, base_dir: Path, *, timeout: float = START_TIMEOUT,
                 cluster: bool = False) -> None:
        self.base_dir = Path(base_dir)
        self.timeout = timeout
        self.cluster = cluster
        self.host = HOST
        self.port: int | None = None
        self.log_path = self.base_dir / "redis.log"
        self._proc: Proc | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def url_for(self, db: int = 0) -> str:
        if self.cluster:
            return f"redis+cluster://{self.host}:{self.port}"
        return f"redis://{self.host}:{self.port}/{db}"

    @property
    def url(self) -> str:
        return self.url_for(0)

    def start(self) -> Self:
        """Start the server; a no-op if it is running (so `with s.start():` works)."""
        if self._proc is not None:
            return self
        exe = shutil.which("redis-server")
        if exe is None:
            raise ServerUnavailable("redis-server not found on PATH; run scripts/install-system-deps.sh")
        self.base_dir.mkdir(parents=True, exist_ok=True)

        def spawn(port: int) -> Proc:
            cmd = [exe, "--port", str(port), "--bind", self.host]
            cmd += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
            cmd += ["--dir", str(self.base_dir)]
            if self.cluster:
                # The bus port defaults to port + 10000, past 65535 for a high free port.
                cmd += ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                        "--cluster-port", str(free_port())]
            return _popen(_die_with_parent(cmd, "SIGTERM"), self.log_path)

        try:
            self._proc, self.port = _spawn_on_free_port(
                "redis-server", spawn, self._pong, self.log_path, self.timeout
            )
            if self.cluster:
                self._claim_all_slots()
        except BaseException:
            self.stop()
            raise
        return self

    def _claim_all_slots(self) -> None:
        """Give this node every hash slot and wait until the cluster reports ok."""
        with socket.create_connection((self.host, self.port or 0), timeout=5) as s:
            s.sendall(b"CLUSTER ADDSLOTSRANGE 0 16383\r\n")
            if not s.recv(64).startswith(b"+OK"):
                raise ServerStartError(f"redis-server refused the cluster slots; log {self.log_path}")
            deadline = time.monotonic() + self.timeout
            while time.monotonic() < deadline:
                s.sendall(b"CLUSTER INFO\r\n")
                if b"cluster_state:ok" in s.recv(4096):
                    return
                time.sleep(0.05)
        raise ServerStartError(f"redis cluster not ok after {self.timeout:.0f}s; log {self.log_path}")

    def _pong(self, port: int) -> bool:
        try:
            with socket.create_connection((self.host, port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")  # "-LOADING" while starting
        except OSError:
            return False


# -------------------------------------------------------------------------- NATS


class NatsServer(_ServerProcess):
    """A nats-server with JetStream on 127.0.0.1:<free port>, its store under base_dir."""


    def __init__(self, base_dir: Path, *, timeout: float = START_TIMEOUT) -> None:
        self.base_dir = Path(base_dir)
        self.timeout = timeout
        self.host = HOST
        self.port: int | None = None
        self.log_path = self.base_dir / "nats.log"
        self._proc: Proc | None = None
        self._spawn: Callable[[int], Proc] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self) -> Self:
        """Start the server; a no-op if it is running (so `with s.start():` works)."""
        if self._proc is not None:
            return self
        # Debian installs it in /usr/sbin, which a non-root PATH often lacks.
        exe = shutil.which("nats-server") or shutil.which("nats-server", path="/usr/sbin")
        if exe is None:
            raise ServerUnavailable("nats-server not found; run scripts/install-system-deps.sh")
        store = self.base_dir / "nats-store"
        store.mkdir(parents=True, exist_ok=True)

        def spawn(port: int) -> Proc:
            cmd = [exe, "-js", "-a", self.host, "-p", str(port), "-sd", str(store)]
            return _popen(_die_with_parent(cmd, "SIGTERM"), self.log_path)

        self._spawn = spawn
        try:
            self._proc, self.port = _spawn_on_free_port(
                "nats-server", spawn, self._pong, self.log_path, self.timeout
            )
        except BaseException:
            self.stop()
            raise
        return self

    def _pong(self, port: int) -> bool:
        # The server greets with INFO, then answers PING with PONG once it serves clients.
        try:
            with socket.create_connection((self.host, port), timeout=1) as s:
                s.sendall(b"CONNECT {\"verbose\":false}\r\nPING\r\n")
                seen = b""
                while b"PONG" not in seen and len(seen) < 65536:
                    chunk = s.recv(4096)
                    if not chunk:
                        return False
                    seen += chunk
                return True
        except OSError:
            return False
