"""A throwaway PostgreSQL cluster, for the server-store tests and benchmarks/pg_scale.py: initdb into a private
temporary folder, listening on a unix socket there only, stopped and deleted afterwards. PostgreSQL refuses to run
as root, so as root (this machine, CI) the server runs as an unprivileged user (postgres when the Debian package
created it, else nobody) through runuser; the cluster's own superuser, `omnibind`, is trusted on the socket.
Nothing in it is durable (fsync is off): it is for measurements and tests, never for an index to keep."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "omnibind"
SERVER_SETTINGS = "-c listen_addresses='' -c fsync=off -c full_page_writes=off -c max_connections=50"
INSTALL_HINT = "`make setup` as root installs PostgreSQL 15 and pgvector 0.8.0 (scripts/install_postgres.sh)"


@dataclass(frozen=True)
class Cluster:
    """A running cluster: its folder (data, socket, log), binaries and the user it runs as (None: this user)."""

    folder: Path
    bindir: Path
    user: str | None

    @property
    def socket(self) -> Path:
        """The folder of the cluster's unix socket."""
        return self.folder

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        """A postgresql:// URL of one database over the unix socket."""
        secret = f":{password}" if password else ""
        return f"postgresql://{SUPERUSER}{secret}@/{database}?host={self.socket}"

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        """Run one of the cluster's binaries as the cluster's user."""
        argv = [str(self.bindir / command[0]), *command[1:]]
        if self.user is not None:
            argv = ["runuser", "-u", self.user, "--", *argv]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60)

    def log(self) -> str:
        """The end of the server's log, for failure messages."""
        try:
            return (self.folder / "log").read_text()[-2000:]
        except OSError:
            return ""


def find_bindir() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres: from PATH, else the newest /usr/lib/postgresql/N/bin."""
    def complete(folder: Path) -> bool:
        return all((folder / name).is_file() for name in ("initdb", "pg_ctl", "postgres"))

    found = shutil.which("pg_ctl")
    if found and complete(Path(found).resolve().parent):
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                      key=lambda p: int(re.sub(r"\D", "", p.parent.name) or 0), reverse=True)
    return next((folder for folder in versions if complete(folder)), None)


def server_user() -> str | None:
    """Whom the server runs as: None (this user) unless root, then an unprivileged account that exists."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root, and neither a `postgres` nor a `nobody` user exists to run PostgreSQL as")


def start(settings: str = "", parent: Path | None = None) -> Cluster | str:
    """Start a fresh cluster, or say why PostgreSQL cannot be found (the reason to skip); a cluster that is found but
    does not start is an error, not a skip. `settings` adds server settings (`-c name=value ...`); the cluster's
    folder is made in `parent` (default /tmp), which the server's user must be able to reach."""
    bindir = find_bindir()
    if bindir is None:
        return f"PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; {INSTALL_HINT}"
    user = server_user()
    if user is not None and shutil.which("runuser") is None:
        return "running as root without `runuser` to start PostgreSQL as an unprivileged user"
    # /tmp when it exists: every user can reach it (a TMPDIR under /root could not be), and its paths are short
    # enough for a unix socket's (at most 107 bytes).
    if parent is None and Path("/tmp").is_dir():
        parent = Path("/tmp")
    folder = Path(tempfile.mkdtemp(prefix="omnibind-pg-", dir=parent))
    if user is not None:
        account = pwd.getpwnam(user)
        os.chown(folder, account.pw_uid, account.pw_gid)
    cluster = Cluster(folder, bindir, user)
    steps = (("initdb", "-D", str(folder / "data"), "-U", SUPERUSER, "--auth=trust", "--no-sync", "-E", "UTF8",
              "--locale=C.UTF-8"),
             ("pg_ctl", "-D", str(folder / "data"), "-l", str(folder / "log"), "-w", "-t", "60",
              "-o", f"-k {folder} {SERVER_SETTINGS} {settings}".strip(), "start"))
    for step in steps:
        result = cluster.run(*step)
        if result.returncode != 0:
            stop(cluster)
            raise RuntimeError(f"{step[0]} failed ({result.returncode}): {result.stderr.strip()}\n{cluster.log()}")
    return cluster


def stop(cluster: Cluster) -> None:
    """Stop the server at once (nothing in it is kept) and delete its folder, in the background: its thousands of
    small files take seconds to delete, which no test needs to wait for."""
    if (cluster.folder / "data" / "postmaster.pid").exists():
        cluster.run("pg_ctl", "-D", str(cluster.folder / "data"), "-m", "immediate", "-w", "stop")
    subprocess.Popen(["rm", "-rf", "--", str(cluster.folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)


def pgvector_missing(cluster: Cluster) -> str | None:
    """Why pgvector cannot be used in this cluster (the reason to skip), None when it can."""
    import psycopg

    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        row = conn.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'").fetchone()
    if row is None:
        return f"pgvector is not installed for the PostgreSQL in {cluster.bindir}; {INSTALL_HINT}"
    return None


def create_database(cluster: Cluster, name: str) -> str:
    """A new empty database in the cluster; its URL."""
    import psycopg

    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        # From PostgreSQL 15 a new database is written through the WAL page by page unless it is copied as files.
        strategy = " STRATEGY FILE_COPY" if conn.info.server_version >= 150000 else ""
        conn.execute(f'CREATE DATABASE "{name}"{strategy}')
    return cluster.url(name)
