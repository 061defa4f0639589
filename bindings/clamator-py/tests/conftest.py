"""Fixtures: real redis-server / nats-server processes on free ports (killable, restartable),
the generated interop contracts, and the two implementations under test side by side:
``released`` (clamator-over-redis / -memory 0.1.9 from PyPI) and ``rs`` (the clamator-rs wheel).
"""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "interop" / "generated" / "py"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode}) before it was ready")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} not ready on port {port} after 20 s")


class RedisProcess:
    """A private redis-server (no persistence) that tests may kill and start again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = os.environ.get("CLAMATOR_REDIS_SERVER", "redis-server")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--bind", "127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_port(self.port, self.proc, "redis-server")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture(scope="session")
def redis_server():
    server = RedisProcess()
    server.start()
    yield server
    server.kill()


@pytest.fixture
def redis_url(redis_server: RedisProcess) -> str:
    if redis_server.proc is None or redis_server.proc.poll() is not None:
        redis_server.start()
    return redis_server.url


@dataclass
class TlsRedis:
    port: int
    ca: str  # the CA that signed the server's certificate (PEM file)


@pytest.fixture(scope="session")
def tls_redis():
    """A redis-server answering TLS only, with a certificate for 127.0.0.1 signed by a CA made
    here (openssl, as the Rust tests make theirs)."""
    store = Path(tempfile.mkdtemp(prefix="clamator-rs-tls-"))

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=store, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.crt", "-days", "2", "-subj", "/CN=clamator-rs-test-ca")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
            "server.csr", "-subj", "/CN=127.0.0.1")
    (store / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext")
    port = free_port()
    binary = os.environ.get("CLAMATOR_REDIS_SERVER", "redis-server")
    proc = subprocess.Popen(
        [binary, "--port", "0", "--tls-port", str(port), "--tls-cert-file", "server.crt",
         "--tls-key-file", "server.key", "--tls-ca-cert-file", "ca.crt",
         "--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
        cwd=store, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_port(port, proc, "redis-server (TLS)")
    yield TlsRedis(port, str(store / "ca.crt"))
    proc.kill()
    proc.wait()
    shutil.rmtree(store, ignore_errors=True)


@pytest.fixture(scope="session")
def nats_url():
    if shutil.which("nats-server") is None:
        raise RuntimeError("nats-server is not on PATH (scripts/ensure-deps.sh installs it)")
    port = free_port()
    store = tempfile.mkdtemp(prefix="clamator-rs-nats-")
    proc = subprocess.Popen(
        ["nats-server", "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", store],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_port(port, proc, "nats-server")
    yield f"nats://127.0.0.1:{port}"
    proc.kill()
    proc.wait()
    shutil.rmtree(store, ignore_errors=True)


@pytest.fixture
def prefix() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


@dataclass
class Impl:
    """One implementation of the 0.1.9 API."""

    name: str
    redis: ModuleType
    memory: ModuleType


def load(name: str) -> Impl:
    if name == "released":
        return Impl(name, importlib.import_module("clamator_over_redis"),
                    importlib.import_module("clamator_over_memory"))
    return Impl(name, importlib.import_module("clamator_rs.over_redis"),
                importlib.import_module("clamator_rs.over_memory"))


@pytest.fixture(params=["released", "rs"])
def impl(request: pytest.FixtureRequest) -> Impl:
    return load(request.param)


@pytest.fixture
def rs() -> Impl:
    return load("rs")


@pytest.fixture
def released() -> Impl:
    return load("released")
