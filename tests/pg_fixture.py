"""A real PostgreSQL server for the fleet tests: initdb into a temp dir, run as the `postgres` user.

PostgreSQL refuses to run as root, so when the tests run as root (CI) the cluster belongs to the
`postgres` system user. The server listens on 127.0.0.1 (password auth, scram) and on a Unix
socket (trust, for the admin). conftest.py loads this module as a plugin, so any test can ask
for ``pg`` (the server) or ``pg_db`` (a fresh database).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROLE, PASSWORD = "fer", "s3cret-Pa55word"


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One throw-away cluster; ``stop()``/``start()`` let a test take it down and bring it back."""

    def __init__(self, bindir: Path, root: Path, user: str | None) -> None:
        self.bindir, self.root, self.user = bindir, root, user
        self.data, self.sockets = root / "data", root / "sock"
        self.port = _free_port()
        self._dbs = itertools.count()

    def _as_owner(self, *args: str) -> list[str]:
        return ["runuser", "-u", self.user, "--", *args] if self.user else list(args)

    def init(self, durable: bool = False) -> None:
        """``durable``: fsync on, as a production server (benchmarks); off for the tests' speed."""
        self.sockets.mkdir()
        if self.user:
            entry = pwd.getpwnam(self.user)
            for p in (self.root, self.sockets):
                os.chown(p, entry.pw_uid, entry.pw_gid)
        subprocess.run(
            self._as_owner(
                str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync",
            ),
            check=True, capture_output=True,
        )  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as f:
            f.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = '{self.sockets}'\n"
                "max_connections = 50\n" + ("" if durable else "fsync = off\nfull_page_writes = off\n")
            )

    def start(self) -> None:
        subprocess.run(
            self._as_owner(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
                           "-w", "-t", "60", "start"),
            check=True, capture_output=True,
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(
            self._as_owner(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"),
            check=False, capture_output=True,
        )  # fmt: skip

    def admin(self, sql: str, db: str = "postgres") -> None:
        """Run SQL as the superuser over the Unix socket (psql-free: psycopg)."""
        import psycopg

        with psycopg.connect(host=str(self.sockets), port=self.port, user="postgres", dbname=db,
                             autocommit=True) as conn:  # fmt: skip
            conn.execute(sql)  # type: ignore[arg-type]

    def url(self, db: str, user: str = ROLE, password: str | None = PASSWORD) -> str:
        auth = f"{user}:{password}" if password is not None else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{db}?connect_timeout=5"

    def admin_url(self, db: str) -> str:
        return f"postgresql://postgres@/{db}?host={self.sockets}&port={self.port}"

    def new_database(self) -> str:
        name = f"fleet{next(self._dbs)}"
        self.admin(f"CREATE DATABASE {name} OWNER {ROLE}")
        return name


@pytest.fixture(scope="session")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgServer]:
    """A running PostgreSQL with a login role ``fer`` (password PASSWORD); skips where there is none."""
    pytest.importorskip("psycopg", reason="the fleet extra (psycopg) is not installed")
    bindir = _pg_bin()
    if bindir is None or not (bindir / "pg_ctl").exists():
        pytest.skip("PostgreSQL server binaries not installed (Debian: apt-get install postgresql)")
    user: str | None = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")
        user = "postgres"
    # Not under pytest's tmp dir: that one is private to root and the server user must reach it.
    root = Path(tempfile.mkdtemp(prefix="fer-edge-pg-"))
    server = PgServer(bindir, root, user)
    try:
        server.init()
        server.start()
        server.admin(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_db(pg: PgServer) -> str:
    """A fresh database owned by ``fer``; returns its name."""
    return pg.new_database()
