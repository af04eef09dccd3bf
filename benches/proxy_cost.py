#!/usr/bin/env python3
"""What the router costs next to a plain reverse proxy, in one run: direct to the SIMULATED mock
Ollama, nginx in front of it (Debian's nginx 1.22, `worker_processes 2`, upstream keepalive,
`proxy_buffering off`), and the router (release build, default settings with `threads` as in
conf/, log level warn), all against the same mock, with wrk on 127.0.0.1.

Modes: `uncached` (every request a new prompt, no temperature: random sampling, so the cache is
bypassed; the router's whole uncached path), `streaming` (the same, streamed), `cache-hit` (one
prompt at temperature 0). Concurrency 1, 10 and 64. For each target it prints requests/s,
p50/p99, CPU per request (user+system time of the process and its children from /proc over the
run, divided by the requests wrk counted) and RSS (VmRSS; nginx: master plus workers), the
router's ratios to nginx and to direct, and the router's RSS when idle after start.

--bare-pingora also runs examples/bare_pingora.rs (Pingora 0.9.1 proxying to the mock and doing
nothing else, the router's threads and upstream timeouts): the floor Pingora itself sets.

--baseline-bin runs a second router build (e.g. the previous commit's) in the same run, for a
before/after. --soak N keeps c=64 on the router for N seconds and prints its RSS every 10 s
and the growth of its data directory (the disk written while serving).

Usage: benches/proxy_cost.py [--runs 3] [--seconds 5] [--modes uncached,streaming,cache-hit]
                             [--concurrency 1,10,64] [--baseline-bin PATH] [--soak 300]
                             [--bare-pingora]
Needs: cargo build --release --workspace --bins (with --bare-pingora also
cargo build --release --example bare_pingora); wrk and nginx (installed from Debian when
missing, as root; nginx is started and stopped by PID, never as a service).
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benches"))
from load import free_port, to_ms, wait_for  # noqa: E402  (the load benchmark's helpers)
RELEASE = ROOT / "target" / "release"
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
MODES = ("uncached", "streaming", "cache-hit")

UNIQUE_LUA = """
local n = 0
function setup(thread) n = n + 1; thread:set("tid", n) end
function init(args) counter = 0 end
function request()
  counter = counter + 1
  local body = string.format('{"model":"llama3.2:1b",%s"messages":[{"role":"user",' ..
    '"content":"Write a haiku about the ocean, take %s-%d-%d."}]}', EXTRA, NONCE, tid, counter)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
"""


def ensure(tool, package):
    if subprocess.run(["which", tool], capture_output=True).returncode == 0:
        return
    if os.geteuid() != 0:
        raise SystemExit(f"install {package} first: sudo apt-get install -y {package}")
    print(f"installing {package} from Debian", file=sys.stderr)
    # policy-rc.d keeps the package from starting nginx as a service.
    policy = Path("/usr/sbin/policy-rc.d")
    added = not policy.exists()
    if added:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, stdout=subprocess.DEVNULL,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    finally:
        if added:
            policy.unlink()


def family(pid):
    """The process and its direct children (nginx's workers)."""
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                pids.append(int(entry.name))
    return pids


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def rss_mib(pids):
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def wrk(url, mode, connections, seconds, workdir, pids):
    script = workdir / "load.lua"
    if mode == "cache-hit":
        body = json.dumps({"model": "llama3.2:1b", "temperature": 0,
                           "messages": [{"role": "user", "content": "Write a haiku about the ocean."}]})
        script.write_text(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = {json.dumps(body)}\n')
    else:
        extra = '"stream":true,' if mode == "streaming" else ""
        script.write_text(f'NONCE = "{time.time_ns()}"\nEXTRA = {json.dumps(extra)}\n' + UNIQUE_LUA)
    threads = "1" if connections == 1 else "2"
    before = cpu_seconds(pids)
    out = subprocess.run(
        ["wrk", "-t", threads, "-c", str(connections), "-d", f"{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, timeout=seconds + 30, check=True,
    ).stdout
    cpu = cpu_seconds(pids) - before
    if "Non-2xx" in out:
        raise SystemExit(f"non-2xx responses from {url}:\n{out}")
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": to_ms(re.search(r"\s50%\s+(\S+)", out).group(1)),
        "p99": to_ms(re.search(r"\s99%\s+(\S+)", out).group(1)),
        "cpu_ms": cpu * 1000 / max(1, requests),
        "rss": rss_mib(pids),
    }


NGINX_CONF = """worker_processes 2;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {dir}/nginx-body;
  proxy_temp_path {dir}/nginx-proxy;
  upstream mock {{ server 127.0.0.1:{mock}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }}
  }}
}}
"""


def router_conf(workdir, name, port, mock_port, threads):
    conf = workdir / f"{name}.yaml"
    conf.write_text(
        f"threads: {threads}\ngrace_period_seconds: 0\npid_file: {workdir}/{name}.pid\n"
        f"upgrade_sock: {workdir}/{name}.sock\nrouter:\n  host: 127.0.0.1\n  port: {port}\n"
        f"  data_dir: {workdir}/{name}-data\n  profiling: {{auto: false}}\n"
        f"  admin: {{listen: 127.0.0.1:{free_port()}}}\n  log: {{level: warn}}\n"
        f"  pools:\n    - name: bench\n      nodes:\n        - url: http://127.0.0.1:{mock_port}\n"
    )
    return conf


def dir_mib(path):
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / (1024 * 1024)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="the router's Pingora threads (conf/: 2)")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--concurrency", default="1,10,64")
    parser.add_argument("--baseline-bin", help="another smarterrouter build, measured in the same run")
    parser.add_argument("--soak", type=int, default=0, help="seconds of c=64 on the router, RSS every 10 s")
    parser.add_argument("--bare-pingora", action="store_true",
                        help="also run examples/bare_pingora.rs, Pingora proxying with nothing else")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if set(modes) - set(MODES):
        raise SystemExit(f"--modes: of {', '.join(MODES)}")
    levels = [int(c) for c in args.concurrency.split(",")]
    for binary in ("smarterrouter", "mock-ollama"):
        if not (RELEASE / binary).exists():
            raise SystemExit("build first: cargo build --release --workspace --bins")
    bare = RELEASE / "examples" / "bare_pingora"
    if args.bare_pingora and not bare.exists():
        raise SystemExit("build first: cargo build --release --example bare_pingora")
    ensure("wrk", "wrk")
    ensure("nginx", "nginx")

    with tempfile.TemporaryDirectory() as d:
        workdir = Path(d)
        mock_port, nginx_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_")}
        procs = {"direct": subprocess.Popen(
            [str(RELEASE / "mock-ollama"), "--port", str(mock_port), "--tokens", "5"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)}
        ports = {"direct": mock_port, "nginx": nginx_port}
        (workdir / "nginx.conf").write_text(NGINX_CONF.format(dir=workdir, mock=mock_port, port=nginx_port))
        procs["nginx"] = subprocess.Popen(
            ["nginx", "-c", str(workdir / "nginx.conf"), "-p", str(workdir), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if args.bare_pingora:
            ports["pingora"] = free_port()
            procs["pingora"] = subprocess.Popen(
                [str(bare), f"127.0.0.1:{ports['pingora']}", f"127.0.0.1:{mock_port}", str(args.threads)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        routers = [("router", RELEASE / "smarterrouter")]
        if args.baseline_bin:
            routers.append(("baseline", Path(args.baseline_bin)))
        for name, binary in routers:
            ports[name] = free_port()
            conf = router_conf(workdir, name, ports[name], mock_port, args.threads)
            procs[name] = subprocess.Popen([str(binary), "-c", str(conf)], stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL, env=env)
        try:
            wait_for(f"http://127.0.0.1:{mock_port}/api/version")
            wait_for(f"http://127.0.0.1:{nginx_port}/api/version")
            if args.bare_pingora:
                wait_for(f"http://127.0.0.1:{ports['pingora']}/api/version")
            for name, _ in routers:
                wait_for(f"http://127.0.0.1:{ports[name]}/health")
            time.sleep(2)
            idle = {name: rss_mib(family(procs[name].pid)) for name in ports}
            results = {}
            for mode in modes:
                for name in ports:  # warm up connections, pools and the cache
                    wrk(f"http://127.0.0.1:{ports[name]}/v1/chat/completions", mode, 8, 1, workdir,
                        family(procs[name].pid))
                samples = {(name, c): [] for name in ports for c in levels}
                for _ in range(args.runs):
                    for c in levels:
                        for name in ports:
                            samples[(name, c)].append(wrk(f"http://127.0.0.1:{ports[name]}/v1/chat/completions",
                                                          mode, c, args.seconds, workdir, family(procs[name].pid)))
                results[mode] = samples
            report(results, levels, idle, args)
            if args.soak:
                soak(args, workdir, ports["router"], procs["router"].pid)
        finally:
            # nginx's workers outlive a killed master: stop it with SIGTERM (it stops them), then
            # kill whatever of the family is left.
            nginx_family = family(procs["nginx"].pid) if procs["nginx"].poll() is None else []
            procs["nginx"].terminate()
            try:
                procs["nginx"].wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            for pid in nginx_family:
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
            for p in procs.values():
                p.kill()
                p.wait()


def soak(args, workdir, port, pid):
    data = workdir / "router-data"
    start_disk = dir_mib(data)
    print(f"\n# soak: c=64 uncached on the router for {args.soak}s (RSS MiB every 10 s; data dir MiB)")
    script = workdir / "load.lua"
    script.write_text(f'NONCE = "{time.time_ns()}"\nEXTRA = ""\n' + UNIQUE_LUA)
    load = subprocess.Popen(["wrk", "-t", "2", "-c", "64", "-d", f"{args.soak}s", "-s", str(script),
                             f"http://127.0.0.1:{port}/v1/chat/completions"], stdout=subprocess.PIPE, text=True)
    readings = []
    started = time.monotonic()
    while load.poll() is None and time.monotonic() - started < args.soak + 30:
        time.sleep(10)
        readings.append((round(time.monotonic() - started), rss_mib([pid]), dir_mib(data)))
    out, _ = load.communicate(timeout=60)
    print("| t (s) | RSS MiB | data dir MiB |\n|---|---|---|")
    for t, rss, disk in readings:
        print(f"| {t} | {rss:.1f} | {disk:.1f} |")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    after_first_minute = [r for t, r, _ in readings if t >= 60]
    growth = (max(after_first_minute) - min(after_first_minute)) if after_first_minute else 0
    print(f"rps {rps.group(1) if rps else '?'}; RSS max {max(r for _, r, _ in readings):.1f} MiB, "
          f"spread after the first minute {growth:.1f} MiB; data dir {start_disk:.1f} -> {dir_mib(data):.1f} MiB")


def report(results, levels, idle, args):
    med = statistics.median
    print(f"# direct vs nginx vs router, medians of {args.runs} runs of {args.seconds}s (router threads: {args.threads})")
    print("idle RSS after start (MiB): " + ", ".join(f"{n} {v:.1f}" for n, v in idle.items()))
    print("| mode | c | target | rps | p50 ms | p99 ms | CPU ms/req | RSS MiB | rps / nginx | rps / direct | CPU / nginx | p50 - direct |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for mode, samples in results.items():
        for c in levels:
            m = {name: {k: med([s[k] for s in samples[(name, c)]]) for k in ("rps", "p50", "p99", "cpu_ms", "rss")}
                 for (name, cc) in samples if cc == c}
            for name, v in m.items():
                cpu = "–" if name == "direct" else f"{v['cpu_ms'] / m['nginx']['cpu_ms']:.2f}"
                print(f"| {mode} | {c} | {name} | {v['rps']:.0f} | {v['p50']:.3f} | {v['p99']:.3f} | "
                      f"{v['cpu_ms']:.4f} | {v['rss']:.1f} | {v['rps'] / m['nginx']['rps']:.2f} | "
                      f"{v['rps'] / m['direct']['rps']:.2f} | {cpu} | "
                      f"{v['p50'] - m['direct']['p50']:+.3f} |")


if __name__ == "__main__":
    sys.exit(main())
