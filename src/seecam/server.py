"""`seecam server`: a team's MLflow tracking server, as one `mlflow server` command the user can read.

The backend store is any database SQLAlchemy reaches (PostgreSQL for a team; the project's SQLite store by
default), artifacts are served by the server itself (`--serve-artifacts`) from a directory or an object
store, so clients need neither database credentials nor bucket keys. The command is checked before it
starts, each fault as one line: no driver for the database, a database that does not answer, a port in
use, and a non-local `--host` without `--allowed-hosts` (MLflow's guard against DNS rebinding).

MLflow 3.17 also starts a huey job consumer for its GenAI jobs; seecam runs none, so it is switched off
(MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false) instead of costing CPU beside the training.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from seecam.credentials import masked
from seecam.errors import SeecamError
from seecam.tracking.store import LOCAL_HOSTS, unreachable

SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
DB_TIMEOUT_SECONDS = 5
START_TIMEOUT_SECONDS = 120
# uvicorn's line per HTTP request (hundreds after a few page loads) and its INFO chatter buried the UI's links;
# starlette's deprecation warning about MLflow's own code is nothing a user can act on
QUIET_UVICORN = "--no-access-log --log-level warning"
QUIET_ENV = {"PYTHONWARNINGS": "ignore:starlette.middleware.wsgi is deprecated"}


@dataclass(frozen=True)
class ServerConfig:
    backend_store_uri: str
    artifacts_destination: str
    host: str = "127.0.0.1"
    port: int = 5000
    allowed_hosts: str = ""
    cors_allowed_origins: str = ""
    workers: int = 1
    uvicorn_opts: str = ""

    def command(self, mlflow: str = "mlflow") -> list[str]:
        """The `mlflow server` argv (with credentials: pass `masked_command` to anything that prints)."""
        argv = [mlflow, "server", "--backend-store-uri", self.backend_store_uri,
                "--artifacts-destination", self.artifacts_destination, "--serve-artifacts",
                "--host", self.host, "--port", str(self.port), "--workers", str(self.workers)]
        if self.allowed_hosts:
            argv += ["--allowed-hosts", self.allowed_hosts]
        if self.cors_allowed_origins:
            argv += ["--cors-allowed-origins", self.cors_allowed_origins]
        if self.uvicorn_opts:
            argv += ["--uvicorn-opts", self.uvicorn_opts]
        return argv

    def masked_command(self) -> str:
        """The shell line that runs this server, password masked, to print for users who run it themselves."""
        env = " ".join(f"{k}={v}" for k, v in SERVER_ENV.items())
        return f"{env} {shlex.join(masked(arg) for arg in self.command())}"


def artifacts_destination(value: str) -> str:
    """A URI (s3://, gs://, file://...) as given; a plain path made absolute, so the server's cwd does not matter."""
    return value if "://" in value else str(Path(value).resolve())


def check_config(config: ServerConfig) -> None:
    """Every fault found before the server starts, each as one line naming the fix."""
    if config.host not in LOCAL_HOSTS and not config.allowed_hosts:
        raise SeecamError(f"--host {config.host} exposes the server beyond this machine: add --allowed-hosts "
                          "with the names clients use (e.g. mlflow.example.com,10.0.0.5:5000)")
    check_port_free(config.host, config.port)
    check_database(config.backend_store_uri)


def check_port_free(host: str, port: int) -> None:
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise SeecamError(f"cannot listen on {host}:{port} ({exc.strerror or exc}): "
                          "stop what uses it or pick another --port") from None


def check_database(uri: str) -> None:
    """The URI's driver is installed and the database answers (SQLAlchemy, as MLflow itself connects)."""
    import sqlalchemy
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    shown = masked(uri)
    try:
        url = sqlalchemy.engine.make_url(uri)
        dialect = url.get_dialect()
        dialect.import_dbapi()
    except (ArgumentError, NoSuchModuleError) as exc:
        raise SeecamError(f"--backend-store-uri {shown} is not a database URI SQLAlchemy knows ({exc}); "
                          "e.g. postgresql://user:pass@host/db or sqlite:////abs/path/mlflow.db") from None
    except ImportError as exc:
        raise SeecamError(f"no database driver for {url.drivername} ({exc.name or exc}): install it (for "
                          "postgresql://: pip install 'psycopg[binary]') or name one in the URI (postgresql+psycopg2://)"
                          ) from None
    connect_args = {"connect_timeout": DB_TIMEOUT_SECONDS} if dialect.name == "postgresql" else {}
    engine = sqlalchemy.create_engine(url, connect_args=connect_args)
    try:
        with engine.connect():
            pass
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        if url.password:
            reason = reason.replace(url.password, "***")
        raise SeecamError(f"database {shown} does not answer ({reason}): start it or fix --backend-store-uri") \
            from None
    finally:
        engine.dispose()


def serve(config: ServerConfig) -> None:
    """Check, print the exact command (masked), then become that `mlflow server` process."""
    check_config(config)
    url_host = f"[{config.host}]" if ":" in config.host else config.host
    print(f"MLflow server at http://{url_host}:{config.port} (clients: tracking.uri or MLFLOW_TRACKING_URI):\n"
          f"  {config.masked_command()}")
    sys.stdout.flush()
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    os.execve(mlflow, config.command(mlflow), os.environ | SERVER_ENV)


def serve_until_stopped(config: ServerConfig, access_log: bool, ready: Callable[[], None]) -> None:
    """Run `mlflow server` as a child, call `ready()` once it answers its health check, and stop it with one line
    on Ctrl-C (or SIGTERM, SIGHUP).

    The child has a session of its own, so a Ctrl-C reaches this process alone, which stops the server with
    SIGTERM: uvicorn then shuts down quietly instead of each of its processes printing a KeyboardInterrupt
    traceback (40 lines). Its output goes to stderr, so stdout holds only what `ready` prints.
    """
    check_config(config)
    config = config if access_log else replace(config, uvicorn_opts=QUIET_UVICORN)
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    url = f"http://{config.host}:{config.port}"
    stop = {signal.SIGTERM: signal.default_int_handler, signal.SIGHUP: signal.default_int_handler}
    previous = {sig: signal.signal(sig, handler) for sig, handler in stop.items()}
    server = subprocess.Popen(config.command(mlflow), stdout=sys.stderr, env=os.environ | SERVER_ENV | QUIET_ENV,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while unreachable(url) is not None:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SeecamError(f"mlflow server did not answer at {url} (exit code {server.poll()}); its output "
                                  "is above") from None
            time.sleep(0.3)
        ready()
        server.wait()
    except KeyboardInterrupt:
        print("MLflow UI stopped.", flush=True)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
