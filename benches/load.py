#!/usr/bin/env python3
"""Load benchmark: the router vs a direct connection to the same SIMULATED mock Ollama, in one run.

It measures, with wrk on 127.0.0.1 only, four request kinds:
  - non-streaming, streaming: one chat request with no temperature (random sampling: the cache
    is bypassed), so the uncached proxy path;
  - cache-miss: every request a new prompt at temperature 0, so every one is looked up, missed,
    forwarded and stored (the cache's cost on the uncached path; evictions once 200 are stored);
  - cache-hit: one prompt at temperature 0, so after the first request the router answers from
    cache (the direct figure is still the mock answering).
For each: requests/s at concurrency 64 (router / direct ratio; target >= 0.5 uncached) and latency
p50 and p99 at concurrency 1 (added latency = router - direct; target p99 < 0.5 ms uncached; a
hit's p50 below direct's). A hit must serve at least 5x the router's cache-miss requests/s.
Each measurement runs --runs times (alternating targets) and the medians are reported.

A second router, "protected", runs the same build with every protection on: a client API key
(router.auth.api_keys, sent by every request) and rate limiting (router.rate_limit, with a limit
too high to trigger). Its uncached throughput must stay within 10% of the plain router's.
The "seed" mode is the original's own benchmark, `hey -c 10 -n 100 -m POST` of
{"messages":[{"role":"user","content":"Hello"}]} at /v1/chat/completions (the guide's command
lacks -m POST, and any server answers its GET with 405); direct gets the same body with a model.

With --baseline-bin PATH a second router (another build, e.g. the previous commit's) runs against
the same mock in the same run, so a change can be measured before and after side by side;
--baseline-router-yaml adds settings under its router: (the same build with a feature off:
--baseline-bin target/release/smarterrouter --baseline-router-yaml '  routing: {classifier: keywords}').

Usage: benches/load.py [--runs 3] [--seconds 5] [--tokens 5] [--threads 2] [--latency-ms 0]
                       [--baseline-bin PATH] [--modes non-streaming,streaming,...]
Needs: release builds (cargo build --release --workspace --bins), wrk and hey (installed from
Debian when missing and run as root: apt-get install wrk hey).
"""

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RELEASE = ROOT / "target" / "release"
# The client key of the "protected" router.
BENCH_KEY = "bench-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {BENCH_KEY}"}


def ensure_tools(*tools):
    missing = [t for t in tools if subprocess.run(["which", t], capture_output=True).returncode != 0]
    if not missing:
        return
    if os.geteuid() != 0:
        raise SystemExit(f"install {' '.join(missing)} first: sudo apt-get install -y {' '.join(missing)}")
    print(f"installing {' '.join(missing)} from Debian", file=sys.stderr)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, stdout=subprocess.DEVNULL)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"not ready: {url}")


def to_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


# Each wrk thread numbers its requests; the nonce keeps one invocation's prompts new to the next.
UNIQUE_LUA = """
local n = 0
function setup(thread) n = n + 1; thread:set("tid", n) end
function init(args) counter = 0 end
function request()
  counter = counter + 1
  local body = string.format('{"model":"llama3.2:1b","temperature":0,"messages":[{"role":"user",' ..
    '"content":"Write a haiku about the ocean, take %s-%d-%d."}]}', NONCE, tid, counter)
  return wrk.format("POST", nil, HEADERS, body)
end
"""


def wrk(url, body_file, connections, seconds, workdir, headers=None):
    script = workdir / "post.lua"
    headers = {"Content-Type": "application/json", **(headers or {})}
    lua_headers = "HEADERS = {" + ", ".join(f'["{k}"] = "{v}"' for k, v in headers.items()) + "}\n"
    if body_file is None:
        script.write_text(f'NONCE = "{time.time_ns()}"\n' + lua_headers + UNIQUE_LUA)
    else:
        script.write_text(
            lua_headers + 'wrk.method = "POST"\nfor k, v in pairs(HEADERS) do wrk.headers[k] = v end\n'
            f'local f = io.open("{body_file}", "r"); wrk.body = f:read("*a"); f:close()\n'
        )
    threads = "1" if connections == 1 else "2"
    out = subprocess.run(
        ["wrk", "-t", threads, "-c", str(connections), "-d", f"{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, timeout=seconds + 30, check=True,
    ).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"non-2xx responses from {url}:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = to_ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = to_ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    return rps, p50, p99


def hey(url, body, headers):
    """The seed's benchmark: 100 POSTs, 10 at a time. Returns rps, p50 and p99 in ms."""
    cmd = ["hey", "-c", "10", "-n", "100", "-m", "POST", "-T", "application/json", "-d", json.dumps(body)]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=60, check=True).stdout
    ok = re.search(r"\[200\]\s+(\d+) responses", out)
    if not ok or int(ok.group(1)) != 100:
        raise SystemExit(f"hey: not 100 answers of 200 from {url}:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = float(re.search(r"50%+ in ([\d.]+) secs", out).group(1)) * 1000
    p99 = float(re.search(r"99%+ in ([\d.]+) secs", out).group(1)) * 1000
    return rps, p50, p99


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="router worker threads (Pingora `threads`)")
    parser.add_argument("--latency-ms", type=int, default=0, help="mock delay before each answer")
    parser.add_argument("--baseline-bin", help="another smarterrouter binary to measure in the same run")
    parser.add_argument("--baseline-router-yaml", default="",
                        help="lines added under router: for the baseline (e.g. '  routing: {classifier: keywords}')")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    args = parser.parse_args()
    args.modes = [m for m in args.modes.split(",") if m]
    unknown = set(args.modes) - set(MODES)
    if unknown:
        raise SystemExit(f"--modes: unknown {', '.join(sorted(unknown))} (known: {', '.join(MODES)})")
    for binary in ("smarterrouter", "mock-ollama"):
        if not (RELEASE / binary).exists():
            raise SystemExit("build first: cargo build --release --workspace --bins")
    ensure_tools("wrk", *(["hey"] if "seed" in args.modes else []))

    with tempfile.TemporaryDirectory() as d:
        workdir = Path(d)
        mock_port, router_port, admin_port = free_port(), free_port(), free_port()
        mock = subprocess.Popen(
            [str(RELEASE / "mock-ollama"), "--port", str(mock_port), "--tokens", str(args.tokens),
             "--latency-ms", str(args.latency_ms)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        routers, ports = [], {}
        binaries = [("router", RELEASE / "smarterrouter"), ("protected", RELEASE / "smarterrouter")]
        if args.baseline_bin:
            binaries.append(("baseline", Path(args.baseline_bin)))
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_")}
        for name, binary in binaries:
            port, admin_port = free_port(), free_port()
            conf = workdir / f"{name}.yaml"
            protection = (
                f"  auth: {{api_keys: [{{key: {BENCH_KEY}, name: bench}}]}}\n"
                "  rate_limit: {enabled: true, requests_per_minute: 1000000000}\n"
                if name == "protected" else ""
            )
            if name == "baseline" and args.baseline_router_yaml:
                protection += args.baseline_router_yaml.rstrip("\n") + "\n"
            conf.write_text(
                f"threads: {args.threads}\ngrace_period_seconds: 0\npid_file: {workdir}/{name}.pid\nupgrade_sock: {workdir}/{name}.sock\n"
                f"router:\n  host: 127.0.0.1\n  port: {port}\n  data_dir: {workdir}/{name}-data\n  profiling: {{auto: false}}\n  admin: {{listen: 127.0.0.1:{admin_port}}}\n"
                f"  log: {{level: warn}}\n{protection}  pools:\n    - name: bench\n      nodes:\n        - url: http://127.0.0.1:{mock_port}\n"
            )
            routers.append(subprocess.Popen(
                [str(binary), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
            ))
            ports[name] = port
        try:
            wait_for(f"http://127.0.0.1:{mock_port}/api/version")
            for port in ports.values():
                wait_for(f"http://127.0.0.1:{port}/health")
            results = run_all(args, workdir, mock_port, ports)
        finally:
            for p in (*routers, mock):
                p.kill()
                p.wait()
    report(results, args)


MODES = ("non-streaming", "streaming", "cache-miss", "cache-hit", "seed")


def run_seed(args, mock_port, router_ports):
    """hey -c 10 -n 100 -m POST, --runs times per target: samples keyed like wrk's (c=10 only)."""
    body = {"messages": [{"role": "user", "content": "Hello"}]}
    targets = {"direct": (mock_port, {**body, "model": "llama3.2:1b"}, {})}
    for name, port in router_ports.items():
        targets[name] = (port, body, AUTH if name == "protected" else {})
    samples = {(name, 10): [] for name in targets}
    for _ in range(args.runs):
        for name, (port, payload, headers) in targets.items():
            samples[(name, 10)].append(hey(f"http://127.0.0.1:{port}/v1/chat/completions", payload, headers))
    return samples


def run_all(args, workdir, mock_port, router_ports):
    results = {}
    for mode in args.modes:
        if mode == "seed":
            results[mode] = run_seed(args, mock_port, router_ports)
            continue
        body = workdir / f"{mode}.json"
        request = {"model": "llama3.2:1b", "stream": mode == "streaming",
                   "messages": [{"role": "user", "content": "Write a haiku about the ocean."}]}
        if mode == "cache-hit":
            request["temperature"] = 0
        body.write_text(json.dumps(request))
        if mode == "cache-miss":
            body = None
        targets = {"direct": f"http://127.0.0.1:{mock_port}/v1/chat/completions"}
        for name, port in router_ports.items():
            targets[name] = f"http://127.0.0.1:{port}/v1/chat/completions"
        headers = {name: AUTH if name == "protected" else {} for name in targets}
        for name in targets:  # warm up connections and caches
            wrk(targets[name], body, 8, 1, workdir, headers[name])
        samples = {(name, c): [] for name in targets for c in (64, 1)}
        for _ in range(args.runs):
            for c in (64, 1):
                for name, url in targets.items():
                    samples[(name, c)].append(wrk(url, body, c, args.seconds, workdir, headers[name]))
        results[mode] = samples
    return results


def median(values):
    return statistics.median(values)


def report(results, args):
    print(f"# router ({args.threads} threads) vs direct, medians of {args.runs} runs of {args.seconds}s, "
          f"mock answers {args.tokens} tokens after {args.latency_ms} ms")
    print("| mode | target | rps c=64 | ratio to direct | p50 c=1 | added p50 | p99 c=1 | added p99 |")
    print("|---|---|---|---|---|---|---|---|")
    failed = False
    order = ("direct", "router", "protected", "baseline")
    for mode, s in results.items():
        names = sorted({name for name, _ in s}, key=order.index)
        if mode == "seed":
            med = {n: [median([r[i] for r in s[(n, 10)]]) for i in range(3)] for n in names}
            for name in names:
                rps, p50, p99 = med[name]
                print(f"| seed (hey -c 10 -n 100) | {name} | {rps:.0f} (c=10) | {rps / med['direct'][0]:.2f} | "
                      f"{p50:.3f} ms (c=10) | {p50 - med['direct'][1]:+.3f} ms | {p99:.3f} ms (c=10) | "
                      f"{p99 - med['direct'][2]:+.3f} ms |")
            continue
        med = {n: (median([r[0] for r in s[(n, 64)]]), median([r[1] for r in s[(n, 1)]]),
                   median([r[2] for r in s[(n, 1)]])) for n in names}
        rps_d, p50_d, p99_d = med["direct"]
        for name in names:
            rps, p50, p99 = med[name]
            print(f"| {mode} | {name} | {rps:.0f} | {rps / rps_d:.2f} | {p50:.3f} ms | {p50 - p50_d:+.3f} ms | "
                  f"{p99:.3f} ms | {p99 - p99_d:+.3f} ms |")
        ratio = med["router"][0] / rps_d
        if mode == "cache-hit":
            failed |= med["router"][1] >= p50_d
            if "cache-miss" in results:
                miss = results["cache-miss"]
                miss_rps = median([r[0] for r in miss[("router", 64)]])
                hit_ratio = med["router"][0] / miss_rps
                print(f"| cache-hit | router hit / router miss | {hit_ratio:.2f} | | | | | |")
                failed |= hit_ratio < 5
        else:
            failed |= ratio < 0.5 or med["router"][2] - p99_d >= 0.5
        if "protected" in med and mode != "cache-hit":
            protected_ratio = med["protected"][0] / med["router"][0]
            print(f"| {mode} | protected / router | {protected_ratio:.2f} | | "
                  f"{med['protected'][1] - med['router'][1]:+.3f} ms | | {med['protected'][2] - med['router'][2]:+.3f} ms | |")
            failed |= protected_ratio < 0.9
        if "baseline" in med:
            print(f"| {mode} | router / baseline | {med['router'][0] / med['baseline'][0]:.2f} | | "
                  f"{med['router'][1] - med['baseline'][1]:+.3f} ms | | {med['router'][2] - med['baseline'][2]:+.3f} ms | |")
    print("targets: uncached throughput ratio >= 0.50 and added p99 at c=1 < 0.5 ms; with protection on "
          ">= 0.90 of without; a hit's p50 below direct's and >= 5x the cache-miss rps:",
          "MISSED" if failed else "met")


if __name__ == "__main__":
    sys.exit(main())
