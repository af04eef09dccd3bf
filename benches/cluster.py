#!/usr/bin/env python3
"""Cluster-mode benchmark: what sharing state through Redis costs, in one run, against the same
SIMULATED mock Ollama (wrk on 127.0.0.1 only).

It starts a local redis-server (Debian's package) on an ephemeral port, the mock, one router in
single-instance mode ("single") and two in cluster mode ("A", "B"), all the same release build,
and measures (medians of --runs):
  - uncached (random sampling, the cache bypassed): p50/p99 at c=1 and rps at c=64, single vs A
    (target: cluster p50 at most +0.2 ms over single);
  - cache-miss: a new prompt per request at temperature 0 (looked up locally, then in Redis,
    forwarded, stored in both), rps at c=64, single vs A;
  - shared fill: B answers prompts that A stored (each one a local miss on B answered from
    Redis), rps at c=64, against the uncached rps (target: at least 3x);
  - local hit: one repeated prompt, rps at c=64 on B, and on the single instance (the same path
    without a cluster);
  - direct: the mock without any proxy at c=64 (what wrk can drive on this machine at all).

Usage: benches/cluster.py [--runs 3] [--seconds 5] [--bin PATH]
(--bin: another smarterrouter build instead of target/release's, e.g. the previous commit's, for
a before/after run interleaved with this one)
Needs: cargo build --release --workspace --bins; wrk and redis-server (apt-get install wrk
redis-server).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load  # noqa: E402  (the same helpers as the load benchmark)

UNIQUE_FIXED = load.UNIQUE_LUA


def wrk_unique(url, nonce, connections, seconds, workdir):
    """wrk with a new prompt per request, numbered under `nonce` (the same nonce replays the
    same prompts)."""
    script = workdir / f"unique-{nonce}.lua"
    script.write_text(
        f'NONCE = "{nonce}"\nHEADERS = {{["Content-Type"] = "application/json"}}\n' + UNIQUE_FIXED
    )
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, timeout=seconds + 30, check=True,
    ).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"non-2xx responses from {url}:\n{out}")
    import re
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def metric(admin_port, name):
    text = load.urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--bin", help="the smarterrouter binary (default: target/release's)")
    args = parser.parse_args()
    router_bin = Path(args.bin) if args.bin else load.RELEASE / "smarterrouter"
    load.ensure_tools("wrk", "redis-server")
    for binary in ("smarterrouter", "mock-ollama"):
        if not (load.RELEASE / binary).exists():
            raise SystemExit("build first: cargo build --release --workspace --bins")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_")}
    with tempfile.TemporaryDirectory() as d:
        workdir = Path(d)
        redis_port, mock_port = load.free_port(), load.free_port()
        procs = [
            subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", str(workdir)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
            subprocess.Popen([str(load.RELEASE / "mock-ollama"), "--port", str(mock_port), "--tokens", "5"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        ]
        ports, admins = {}, {}
        try:
            for name in ("single", "A", "B"):
                port, admin = load.free_port(), load.free_port()
                cluster = (f"  cluster: {{redis_url: 'redis://127.0.0.1:{redis_port}', key_prefix: bench}}\n"
                           if name != "single" else "")
                # Room for every prompt of the run in each local tier would hide the shared one.
                conf = workdir / f"{name}.yaml"
                conf.write_text(
                    f"threads: 2\ngrace_period_seconds: 0\npid_file: {workdir}/{name}.pid\nupgrade_sock: {workdir}/{name}.sock\n"
                    f"router:\n  host: 127.0.0.1\n  port: {port}\n  data_dir: {workdir}/{name}-data\n  profiling: {{auto: false}}\n"
                    f"  admin: {{listen: 127.0.0.1:{admin}}}\n  log: {{level: warn}}\n{cluster}"
                    f"  pools:\n    - name: bench\n      nodes:\n        - url: http://127.0.0.1:{mock_port}\n"
                )
                procs.append(subprocess.Popen([str(router_bin), "-c", str(conf)],
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
                ports[name], admins[name] = port, admin
            for port in ports.values():
                load.wait_for(f"http://127.0.0.1:{port}/health")
            time.sleep(1.5)  # the cluster instances' first ping
            url = {n: f"http://127.0.0.1:{p}/v1/chat/completions" for n, p in ports.items()}
            uncached = workdir / "uncached.json"
            uncached.write_text(json.dumps({"model": "llama3.2:1b", "messages": [
                {"role": "user", "content": "Write a haiku about the ocean."}]}))
            hit = workdir / "hit.json"
            hit.write_text(json.dumps({"model": "llama3.2:1b", "temperature": 0, "messages": [
                {"role": "user", "content": "Write a haiku about the sea."}]}))
            for n in url:
                load.wrk(url[n], uncached, 8, 1, workdir)
            s = {k: [] for k in ("single c1", "A c1", "single c64", "A c64", "single miss", "A miss",
                                 "B fill", "B hit", "single hit", "direct")}
            for run in range(args.runs):
                for n in ("single", "A"):
                    rps, p50, p99 = load.wrk(url[n], uncached, 1, args.seconds, workdir)
                    s[f"{n} c1"].append((p50, p99))
                    s[f"{n} c64"].append(load.wrk(url[n], uncached, 64, args.seconds, workdir)[0])
                    s[f"{n} miss"].append(wrk_unique(url[n], f"miss-{n}-{run}-{time.time_ns()}", 64,
                                                     args.seconds, workdir))
                # A stores prompts for twice as long as B reads them, so B never runs out.
                nonce = f"fill-{run}-{time.time_ns()}"
                wrk_unique(url["A"], nonce, 64, 2 * args.seconds, workdir)
                before = metric(admins["B"], "smarterrouter_cache_shared_fills_total")
                s["B fill"].append(wrk_unique(url["B"], nonce, 64, args.seconds // 2 or 1, workdir))
                fills = metric(admins["B"], "smarterrouter_cache_shared_fills_total") - before
                print(f"run {run + 1}: B answered {fills:.0f} requests from Redis", file=sys.stderr)
                s["B hit"].append(load.wrk(url["B"], hit, 64, args.seconds, workdir)[0])
                s["single hit"].append(load.wrk(url["single"], hit, 64, args.seconds, workdir)[0])
                s["direct"].append(load.wrk(f"http://127.0.0.1:{mock_port}/v1/chat/completions", uncached, 64,
                                            args.seconds, workdir)[0])
        finally:
            for p in procs:
                p.kill()
                p.wait()
    med = statistics.median
    p50 = {n: med(x[0] for x in s[f"{n} c1"]) for n in ("single", "A")}
    p99 = {n: med(x[1] for x in s[f"{n} c1"]) for n in ("single", "A")}
    print(f"| | single instance | cluster (A) | difference |")
    print(f"|---|---|---|---|")
    print(f"| uncached c=1 p50 | {p50['single']:.3f} ms | {p50['A']:.3f} ms | {p50['A'] - p50['single']:+.3f} ms |")
    print(f"| uncached c=1 p99 | {p99['single']:.3f} ms | {p99['A']:.3f} ms | {p99['A'] - p99['single']:+.3f} ms |")
    for k, label in (("c64", "uncached c=64 rps"), ("miss", "cache-miss c=64 rps")):
        a, b = med(s[f"single {k}"]), med(s[f"A {k}"])
        print(f"| {label} | {a:,.0f} | {b:,.0f} | x{b / a:.2f} |")
    fill, hitrps, unc = med(s["B fill"]), med(s["B hit"]), med(s["A c64"])
    print(f"| shared fill on B (A's answers from Redis), c=64 rps | | {fill:,.0f} | x{fill / unc:.2f} of uncached |")
    print(f"| local hit on B, c=64 rps | | {hitrps:,.0f} | x{hitrps / unc:.2f} of uncached |")
    single_hit, single_unc, direct = med(s["single hit"]), med(s["single c64"]), med(s["direct"])
    print(f"| local hit on the single instance, c=64 rps | {single_hit:,.0f} | | x{single_hit / single_unc:.2f} of its uncached |")
    print(f"| direct to the mock, no proxy, c=64 rps | {direct:,.0f} | | x{direct / unc:.2f} of A's uncached |")


if __name__ == "__main__":
    main()
