"""Fixtures that run the real router binary and the SIMULATED mock Ollama (or a real llama-server)
on ephemeral 127.0.0.1 ports. Binaries come from SMARTERROUTER_BIN / MOCK_OLLAMA_BIN (set by
scripts/test), defaulting to target/debug."""

import json
import os
import re
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROUTER_BIN = os.environ.get("SMARTERROUTER_BIN", str(ROOT / "target/debug/smarterrouter"))
MOCK_BIN = os.environ.get("MOCK_OLLAMA_BIN", str(ROOT / "target/debug/mock-ollama"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def wait_until(check, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready after {seconds}s")


class Process:
    def __init__(self, args, log_path, env=None):
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            args, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()

    def output(self):
        return Path(self.log_path).read_text(errors="replace")


@pytest.fixture
def workdir():
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


class Mock:
    """The SIMULATED Ollama; `stats()` tells what it received."""

    def __init__(self, workdir, *extra):
        self.process = Process([MOCK_BIN, "--port", "0", *extra], workdir / "mock.log")
        wait_until(lambda: "listening on" in self.process.output(), 10, "mock-ollama")
        self.url = re.search(r"listening on (http://\S+)", self.process.output()).group(1)

    def stats(self):
        return get_json(f"{self.url}/_mock/stats")


@pytest.fixture
def mock(workdir):
    m = Mock(workdir, "--tokens", "6", "--token-interval-ms", "20")
    yield m
    m.process.stop()


def start_router(workdir, nodes, default_model=None, env=None, router_lines=(), node_lines=()):
    """`router_lines`: extra YAML lines under `router:` (two-space indented); `node_lines`: under each node."""
    port, admin = free_port(), free_port()
    lines = [
        f"pid_file: {workdir}/sr.pid",
        f"upgrade_sock: {workdir}/sr.sock",
        "grace_period_seconds: 0",
        "router:",
        "  host: 127.0.0.1",
        f"  port: {port}",
        f"  data_dir: {workdir}/data",
        f"  admin: {{listen: 127.0.0.1:{admin}}}",
        "  discovery: {interval_secs: 1, timeout_ms: 2000}",
        "  profiling: {auto: false}",
    ]
    if default_model:
        lines.append(f"  default_model: {default_model}")
    lines += list(router_lines)
    lines += ["  pools:", "    - name: test", "      nodes:"]
    for url, kind in nodes:
        lines += [f"        - url: {url}", f"          kind: {kind}"]
        lines += [f"          {line}" for line in node_lines]
    conf = workdir / "router.yaml"
    conf.write_text("\n".join(lines) + "\n")
    # ROUTER_* variables would override this file (ROUTER_OLLAMA_URL replaces the pools).
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_")}
    process = Process([ROUTER_BIN, "-c", str(conf)], workdir / "router.log", env={**clean, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    process.admin_url = f"http://127.0.0.1:{admin}"

    def healthy():
        return all(n["healthy"] for n in get_json(f"{url}/health")["nodes"])

    wait_until(healthy, 20, "router")
    return process, url


@pytest.fixture
def router(workdir, mock):
    process, url = start_router(workdir, [(mock.url, "ollama")], default_model="llama3.2:1b")
    yield url
    process.stop()
