"""A throwaway PostgreSQL server for the integration tests (the ``postgres_dsn`` fixture).

``ThrowawayPostgres`` runs ``initdb`` in a new temp dir and ``pg_ctl start``s the cluster on a free
127.0.0.1 port, unix socket inside the temp dir, trust auth, ``fsync=off``; ``stop()`` stops it
(``pg_ctl stop -m fast``) and deletes the temp dir. ``initdb`` refuses to run as root, so as root
both run via ``runuser -u <user> --`` as an existing unprivileged user (``postgres``, else
``nobody``) who owns the temp dir. The server binaries are found with ``find_server_binaries``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from hookstream.kafka.local_broker import free_port

DSN_ENV = "HOOKSTREAM_TEST_POSTGRES_DSN"
NO_POSTGRES = (
    f"no PostgreSQL for the postgres action test: set {DSN_ENV} "
    "or install the server (apt-get install postgresql)"
)
SUPERUSER = "postgres"
_UNPRIVILEGED_USERS = ("postgres", "nobody")
_START_TIMEOUT_SECONDS = 60
_PORT_ATTEMPTS = 3
_LOG_TAIL_LINES = 20


class PostgresError(RuntimeError):
    """The throwaway server could not be set up, started or stopped; the message says why."""


@dataclass(frozen=True)
class ServerBinaries:
    bindir: Path
    version: str  # the major version, e.g. "15"

    @property
    def initdb(self) -> Path:
        return self.bindir / "initdb"

    @property
    def pg_ctl(self) -> Path:
        return self.bindir / "pg_ctl"


def find_server_binaries() -> ServerBinaries | None:
    """``initdb`` and ``pg_ctl`` of the highest /usr/lib/postgresql/<version>/bin, else from PATH."""
    candidates = sorted(
        (d for d in Path("/usr/lib/postgresql").glob("*/bin") if _has_server(d)),
        key=lambda d: _version_key(d.parent.name),
        reverse=True,
    )
    if not candidates:
        initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
        if initdb and pg_ctl:
            # Symlinks (e.g. /usr/local/bin/initdb): the real bin dir, where `postgres` lives too.
            real = dict.fromkeys([Path(initdb).resolve().parent, Path(pg_ctl).resolve().parent])
            candidates = [d for d in real if _has_server(d)]
    for bindir in candidates:
        try:
            out = subprocess.run(
                [str(bindir / "initdb"), "--version"], capture_output=True, text=True, timeout=30
            ).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        if match := re.search(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?", out):
            major = int(match.group(1))
            version = match.group(1) if major >= 10 else f"{major}.{match.group(2) or 0}"
            return ServerBinaries(bindir, version)
    return None


def _has_server(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres"))


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name)) or (-1,)


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class ThrowawayPostgres:
    """One PostgreSQL cluster in a temp dir, for one test session; see the module docstring."""

    def __init__(self, binaries: ServerBinaries, progress=_to_stderr) -> None:
        self.binaries = binaries
        self.progress = progress
        self.port: int | None = None
        self._tmp: Path | None = None
        self._run_as: str | None = None

    @property
    def dsn(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    @property
    def _data(self) -> Path:
        assert self._tmp is not None
        return self._tmp / "data"

    @property
    def _log(self) -> Path:
        assert self._tmp is not None
        return self._tmp / "server.log"

    def start(self) -> str:
        """Create and start the cluster; returns its DSN. On failure, cleans up and raises PostgresError."""
        began = time.monotonic()
        try:
            self._prepare_dir()
            self._initdb()
            for attempt in range(1, _PORT_ATTEMPTS + 1):
                self.port = free_port()
                self.progress(
                    f"starting a throwaway PostgreSQL {self.binaries.version} on 127.0.0.1:{self.port}… "
                    f"(data in {self._tmp})"
                )
                try:
                    self._pg_ctl("start", "-w", "-t", str(_START_TIMEOUT_SECONDS), "-l", str(self._log))
                    break
                except PostgresError:
                    # The free port may have been taken in between: try another, a couple of times.
                    if attempt == _PORT_ATTEMPTS or "could not bind" not in self._log_tail():
                        raise
        except BaseException:
            self.stop()
            raise
        self.progress(
            f"PostgreSQL {self.binaries.version} ready on 127.0.0.1:{self.port} "
            f"in {time.monotonic() - began:.1f}s"
        )
        return self.dsn

    def stop(self) -> None:
        """Stop the server (if running) and delete the temp dir. Safe to call more than once."""
        if self._tmp is None:
            return
        try:
            if (self._data / "postmaster.pid").exists():
                try:
                    self._pg_ctl("stop", "-m", "fast", "-w", "-t", "30")
                except PostgresError:
                    with contextlib.suppress(PostgresError):
                        self._pg_ctl("stop", "-m", "immediate", "-w", "-t", "30")
                self.progress(f"stopped the throwaway PostgreSQL on 127.0.0.1:{self.port}")
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    # -- steps ------------------------------------------------------------------------------------

    def _prepare_dir(self) -> None:
        if os.geteuid() == 0:
            self._run_as = _unprivileged_user()
            if shutil.which("runuser") is None:
                raise PostgresError("running as root, and initdb refuses root, but runuser is not installed")
            parent = _dir_others_can_reach(Path(tempfile.gettempdir()))
            self._tmp = Path(tempfile.mkdtemp(prefix="hookstream-pg-", dir=parent))
            entry = pwd.getpwnam(self._run_as)
            os.chown(self._tmp, entry.pw_uid, entry.pw_gid)
        else:
            self._tmp = Path(tempfile.mkdtemp(prefix="hookstream-pg-"))

    def _initdb(self) -> None:
        self._run(
            self.binaries.initdb,
            "-D",
            str(self._data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
            what="initdb",
        )
        # In the config file rather than `pg_ctl -o`, which goes through a shell (paths with spaces).
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self._tmp),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        with (self._data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# hookstream test server\n")
            conf.writelines(f"{key} = '{value}'\n" for key, value in settings.items())

    def _pg_ctl(self, *args: str) -> None:
        port = ["-o", f"-p {self.port}"] if args[0] == "start" else []
        self._run(
            self.binaries.pg_ctl, args[0], "-D", str(self._data), *port, *args[1:], what=f"pg_ctl {args[0]}"
        )

    def _run(self, program: Path, *args: str, what: str) -> None:
        command = [str(program), *args]
        if self._run_as is not None:
            command = ["runuser", "-u", self._run_as, "--", *command]
        try:
            result = subprocess.run(
                command,
                cwd=self._tmp,  # readable by the unprivileged user, unlike e.g. /root
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=_START_TIMEOUT_SECONDS + 30,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise PostgresError(f"{what} failed to run: {type(exc).__name__}: {exc}") from None
        if result.returncode != 0:
            output = "\n".join((result.stdout + result.stderr).strip().splitlines()[-_LOG_TAIL_LINES:])
            log = self._log_tail()
            raise PostgresError(
                f"{what} exited with {result.returncode}:\n{output}"
                + (f"\nserver log ({self._log}):\n{log}" if log else "")
            )

    def _log_tail(self) -> str:
        try:
            lines = self._log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-_LOG_TAIL_LINES:])


def _unprivileged_user() -> str:
    for name in _UNPRIVILEGED_USERS:
        with contextlib.suppress(KeyError):
            if pwd.getpwnam(name).pw_uid != 0:
                return name
    raise PostgresError(
        "running as root, and initdb refuses root, but there is no unprivileged user "
        f"({' or '.join(_UNPRIVILEGED_USERS)}) to run it as"
    )


def _dir_others_can_reach(directory: Path) -> Path:
    """``directory`` if every ancestor is world-searchable (the server's user must get in), else /tmp."""
    for part in [directory, *directory.parents]:
        try:
            if not part.stat().st_mode & stat.S_IXOTH:
                return Path("/tmp")
        except OSError:
            return Path("/tmp")
    return directory
