"""The production topology of docker-compose.yml, started from plain processes on 127.0.0.1.

PostgreSQL (its own cluster, made with initdb in a folder of its own), Redis (append-only file, as compose runs it),
S3-compatible object storage (moto's standalone server: MinIO is not installable on these machines; production keeps
MinIO), the migrations and collected static files, gunicorn with compose's command line, and two Celery workers
(queue ``default`` with 4 processes, queue ``gpu`` with 1). Every service gets a free loopback port, so the shared
PostgreSQL and Redis of a development machine are never touched and each service may be stopped, killed or
restarted on its own: the benchmark (benchmarks/topology.py) and the fault tests (tests/topology/) do exactly that.

    .venv/bin/python -m deploy.topology [--root DIR] [--web-port 8000]

starts it, prints the URL and the environment of the app processes, and stops it all on Ctrl-C. What differs from
compose: no nginx (gunicorn is reached directly over plain HTTP, so cookies are not marked Secure), moto for MinIO.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
BUCKET = "readerstudy-images"
# The command lines of docker-compose.yml, bound to loopback.
WEB_COMMAND = ["gunicorn", "readerstudy.wsgi:application", "--workers", "4", "--timeout", "120"]
WORKER_CONCURRENCY = {"default": 4, "gpu": 1}


class TopologyError(RuntimeError):
    """A service did not start or stop in time; the message names it and the end of its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def http_answers(url: str) -> bool:
    """True when the server at `url` answers with any HTTP status."""
    try:
        urllib.request.urlopen(url, timeout=5).close()
        return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def postgres_bin(name: str) -> str:
    """A PostgreSQL server program: on PATH, else Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not candidates:
        raise TopologyError(f"{name} not found: install the PostgreSQL server (Debian: postgresql).")
    return str(candidates[-1])


@dataclass
class Topology:
    """One running topology under `root`; `start()` brings every service up, `stop()` takes every one down."""

    root: Path
    web_port: int = 0
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    as_postgres_user: bool = field(default_factory=lambda: os.geteuid() == 0)
    pg_password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    extra_env: dict[str, str] = field(default_factory=dict)  # settings of a run, e.g. shorter job timings

    @classmethod
    def in_temporary_folder(cls, web_port: int = 0) -> Topology:
        root = Path(tempfile.mkdtemp(prefix="readerstudy-topology-"))
        root.chmod(0o755)  # the PostgreSQL server runs as the postgres user when we are root
        return cls(root=root, web_port=web_port)

    # -- the whole topology ------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['web']}"

    @property
    def staging_dir(self) -> Path:
        return self.root / "var" / "staging"

    def start(self, collect_static: bool = True) -> Topology:
        for name in ("postgres", "redis", "s3"):
            self.ports[name] = free_port()
        self.ports["web"] = self.web_port or free_port()
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        self.env = self.app_environment()
        try:
            self.init_postgres()
            self.start_postgres()
            self.start_redis()
            self.start_s3()
            self.manage("migrate", "--noinput")
            if collect_static:
                self.manage("collectstatic", "--noinput")
            self.start_web()
            for queue in WORKER_CONCURRENCY:
                self.start_worker(queue)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stops the app processes, then the services; removes nothing (see `remove`)."""
        for name in [n for n in self.processes if n not in ("redis", "s3")]:
            self.stop_process(name)
        for name in ("redis", "s3"):
            self.stop_process(name)
        if (self.root / "postgres" / "data" / "postmaster.pid").exists():
            self.pg_ctl("stop", "-m", "fast")

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def app_environment(self) -> dict[str, str]:
        """compose's x-app environment, pointed at the loopback services."""
        env = {key: value for key, value in os.environ.items() if not key.startswith(("READERSTUDY_", "DJANGO_"))}
        env.pop("REDIS_URL", None)
        env.pop("DATABASE_URL", None)
        env.update({
            "DJANGO_SETTINGS_MODULE": "readerstudy.settings",
            "DATABASE_URL": f"postgres://readerstudy:{self.pg_password}@127.0.0.1:{self.ports['postgres']}/readerstudy",
            "REDIS_URL": f"redis://127.0.0.1:{self.ports['redis']}/0",
            "READERSTUDY_DB_CONN_MAX_AGE": "60",
            "READERSTUDY_SECRET_KEY": secrets.token_urlsafe(48),
            "READERSTUDY_DEID_SECRET": secrets.token_urlsafe(48),
            "READERSTUDY_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "READERSTUDY_CSRF_TRUSTED_ORIGINS": f"http://127.0.0.1:{self.ports['web']}",
            "READERSTUDY_SECURE_COOKIES": "0",  # plain HTTP on loopback: compose has TLS at nginx
            "READERSTUDY_S3_BUCKET": BUCKET,
            "READERSTUDY_S3_ENDPOINT_URL": f"http://127.0.0.1:{self.ports['s3']}",
            "AWS_ACCESS_KEY_ID": "topology",
            "AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(24),
            "AWS_DEFAULT_REGION": "us-east-1",
            "READERSTUDY_VAR_DIR": str(self.root / "var"),  # compose's shared staging volume
            "READERSTUDY_STATIC_ROOT": str(self.root / "static"),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        })
        return env

    # -- app processes -------------------------------------------------------------------------------------------

    def manage(self, *args: str, timeout: float = 600) -> str:
        """Runs a management command with the app's environment; its output, or TopologyError with it."""
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        if done.returncode:
            raise TopologyError(f"manage.py {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-4000:]}")
        return done.stdout

    def spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        """Starts a process in its own process group (so that its children can be killed with it), logging to
        logs/<name>.log."""
        log = self.log_path(name).open("a")
        process = subprocess.Popen(command, cwd=REPO, env=env or self.env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        log.close()
        self.processes[name] = process
        return process

    def log_path(self, name: str) -> Path:
        # The PostgreSQL server writes its own log, inside its folder (it may run as another user).
        return self.root / "postgres" / "server.log" if name == "postgres" else self.root / "logs" / f"{name}.log"

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.log_path(name)
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def wait_for(self, name: str, ready, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if ready():
                return
            process = self.processes.get(name)
            if process is not None and process.poll() is not None:
                break
            time.sleep(0.1)
        raise TopologyError(f"{name} did not start:\n{self.log_tail(name)}")

    def start_web(self) -> None:
        """gunicorn, once the port is free (a killed one's processes may hold it for a moment), returned when it
        answers an HTTP request."""
        port = self.ports["web"]
        deadline = time.monotonic() + 30
        while port_open(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.spawn("web", [str(BIN / WEB_COMMAND[0]), *WEB_COMMAND[1:], "--bind", f"127.0.0.1:{port}"])
        self.wait_for("web", lambda: http_answers(f"http://127.0.0.1:{port}/accounts/login/"), seconds=120)

    def start_worker(self, queue: str) -> None:
        name = f"worker-{queue}"
        log = self.log_path(name)
        offset = log.stat().st_size if log.exists() else 0
        self.spawn(name, [str(BIN / "celery"), "-A", "readerstudy", "worker", "-Q", queue, "--concurrency",
                          str(WORKER_CONCURRENCY[queue]), "--loglevel", "INFO", "-n", f"{queue}@%h"])
        self.wait_for(name, lambda: " ready." in log.read_text(errors="replace")[offset:], seconds=120)

    def worker_processes(self, queue: str) -> list[int]:
        """The pids of a worker's main process and its pool processes."""
        main = self.processes[f"worker-{queue}"].pid
        children = Path(f"/proc/{main}/task/{main}/children")
        return [main, *(int(pid) for pid in children.read_text().split())] if children.exists() else [main]

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Sends `sig` to a process and its whole process group (a worker with its pool, gunicorn with its
        workers), as a machine or container crash would."""
        process = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        process.wait(30)

    def stop_process(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        except ProcessLookupError:
            pass

    # -- PostgreSQL ----------------------------------------------------------------------------------------------

    def as_server_user(self, command: list[str]) -> list[str]:
        """initdb and the server refuse to run as root: run them as the postgres user then."""
        return ["runuser", "-u", "postgres", "--", *command] if self.as_postgres_user else command

    def init_postgres(self) -> None:
        folder = self.root / "postgres"
        (folder / "socket").mkdir(parents=True)
        password_file = folder / "superuser-password"
        password_file.write_text(secrets.token_urlsafe(16))
        if self.as_postgres_user:
            shutil.chown(folder, "postgres")
            shutil.chown(folder / "socket", "postgres")
            shutil.chown(password_file, "postgres")
        self.run_checked("postgres", self.as_server_user([
            postgres_bin("initdb"), "-D", str(folder / "data"), "-U", "postgres", "--auth-local=trust",
            "--auth-host=scram-sha-256", f"--pwfile={password_file}", "--encoding=UTF8", "--no-instructions",
        ]))

    def pg_ctl(self, *args: str) -> None:
        folder = self.root / "postgres"
        options = f"-p {self.ports['postgres']} -k {folder / 'socket'} -c listen_addresses=127.0.0.1"
        self.run_checked("postgres", self.as_server_user([
            postgres_bin("pg_ctl"), "-D", str(folder / "data"), "-l", str(self.log_path("postgres")),
            "-o", options, "-w", "-t", "60", *args,
        ]))

    def psql(self, sql: str) -> None:
        self.run_checked("postgres", self.as_server_user([
            postgres_bin("psql"), "-h", str(self.root / "postgres" / "socket"), "-p", str(self.ports["postgres"]),
            "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql,
        ]))

    def start_postgres(self) -> None:
        self.pg_ctl("start")
        self.psql(f"CREATE ROLE readerstudy LOGIN PASSWORD '{self.pg_password}'")
        self.psql("CREATE DATABASE readerstudy OWNER readerstudy")

    def restart_postgres(self, down_seconds: float = 0, while_down: Callable[[], None] | None = None) -> None:
        """A fast shutdown (open connections are ended, committed data stays), `down_seconds` without a server
        (`while_down` is called at its start), then the same cluster started again."""
        self.pg_ctl("stop", "-m", "fast")
        self.pause(down_seconds, while_down)
        self.pg_ctl("start")

    @staticmethod
    def pause(seconds: float, action: Callable[[], None] | None) -> None:
        if action is not None:
            action()
        time.sleep(seconds)

    def run_checked(self, name: str, command: list[str]) -> None:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise TopologyError(f"{name}: {' '.join(command[:6])} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
                                f"\n{self.log_tail(name)}")

    # -- Redis and object storage --------------------------------------------------------------------------------

    def start_redis(self) -> None:
        folder = self.root / "redis"
        folder.mkdir(exist_ok=True)
        port = self.ports["redis"]
        self.spawn("redis", ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder),
                             "--appendonly", "yes", "--save", ""])
        self.wait_for("redis", lambda: port_open(port))

    def restart_redis(self, down_seconds: float = 0, while_down: Callable[[], None] | None = None) -> None:
        """Redis shut down (it writes its append-only file), `down_seconds` without it (`while_down` is called at
        its start), then started again on the same port and folder."""
        self.stop_process("redis")
        self.pause(down_seconds, while_down)
        self.start_redis()

    def start_s3(self) -> None:
        port = self.ports["s3"]
        self.spawn("s3", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)])
        self.wait_for("s3", lambda: port_open(port))
        self.s3_client().create_bucket(Bucket=BUCKET)

    def s3_client(self):
        """A boto3 client of the object storage, with the app's credentials."""
        import boto3

        return boto3.client("s3", endpoint_url=self.env["READERSTUDY_S3_ENDPOINT_URL"],
                            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, help="folder for the databases, logs and staging (default: a new "
                                                  "temporary folder, removed on exit)")
    parser.add_argument("--web-port", type=int, default=8000)
    args = parser.parse_args()
    if args.root:
        args.root.mkdir(parents=True, exist_ok=True)
        args.root.chmod(0o755)
        topology = Topology(root=args.root, web_port=args.web_port)
    else:
        topology = Topology.in_temporary_folder(web_port=args.web_port)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    topology.start()
    print(f"readerstudy at {topology.url} (logs: {topology.root / 'logs'}); the app processes' environment:")
    for key in sorted(k for k in topology.env if k.startswith(("DATABASE_URL", "REDIS_URL", "READERSTUDY_", "AWS_"))):
        print(f"export {key}={topology.env[key]}")
    print("Ctrl-C stops everything.", flush=True)
    try:
        while not stop:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        topology.stop()
        if not args.root:
            topology.remove()


if __name__ == "__main__":
    main()
