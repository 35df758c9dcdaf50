"""A private installation for a benchmark run: its own database, image store and settings, never a real one."""

import os
import secrets
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def private_environment(tmp: Path, database_url: str | None = None) -> dict[str, str]:
    """Sets (and returns, for a server subprocess) the environment of an installation inside `tmp`."""
    env = {
        "DATABASE_URL": database_url or f"sqlite:///{tmp / 'var' / 'readerstudy.sqlite3'}",
        "READERSTUDY_VAR_DIR": str(tmp / "var"),
        "READERSTUDY_MEDIA_ROOT": str(tmp / "media"),
        "READERSTUDY_STATIC_ROOT": str(tmp / "static"),
        "READERSTUDY_SECRET_KEY": secrets.token_urlsafe(48),
        "READERSTUDY_DEID_SECRET": secrets.token_urlsafe(48),
        "READERSTUDY_SECURE_COOKIES": "0",
        "READERSTUDY_LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "readerstudy.settings",
    }
    os.environ.update(env)
    (tmp / "var").mkdir()
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    env: dict[str, str], port: int, workers: int = 2, threads: int = 8, keep_alive: int = 2
) -> subprocess.Popen:
    """gunicorn with the project's WSGI app on ``port``, returned once it accepts connections."""
    command = [str(ROOT / ".venv" / "bin" / "gunicorn"), "readerstudy.wsgi", "-b", f"127.0.0.1:{port}",
               "-w", str(workers), "-k", "gthread", "--threads", str(threads), "--keep-alive", str(keep_alive),
               "--log-level", "warning"]
    server = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("gunicorn did not start")
