#!/usr/bin/env python3
"""Side-by-side benchmark of codis-proxy (`just bench proxy`).

Three paths, in the same run, alternating order each round (A B C, then C B A, …):
- ours: codis-proxy in front of two codis-servers (slots split in halves);
- twemproxy: Debian's nutcracker in front of two redis-server 7.0 (ketama, fnv1a_64);
- direct: one redis-server 7.0, no proxy.

Pinned as in ../shared/reference/peers.md: servers and proxy on cpu 0, redis-benchmark on cpu 1
(`-c 50 -r 1000000 -d 32`). Per test: ops/s, p50/p99, and the proxy process's CPU µs per request
(user+sys from /proc). Medians over the rounds.
"""

import argparse
import csv
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_bench import Server, free_port, machine  # noqa: E402

MGET_10 = ["MGET"] + ["key:__rand_int__"] * 10
TESTS = [
    ("SET", ["-t", "set"]),
    ("GET", ["-t", "get"]),
    ("MSET (10 keys)", ["-t", "mset"]),
    ("MGET (10 keys)", MGET_10),
]


class Path:
    """A contender: the process clients talk to, the processes behind it, and whose CPU counts."""

    def __init__(self, name, front, behind):
        self.name = name
        self.front = front
        self.behind = behind
        self.port = front.port

    def stop(self):
        for process in [self.front, *self.behind]:
            process.stop()


def start_ours(codis_server, codis_proxy, workdir):
    servers = []
    for _ in range(2):
        port = free_port()
        servers.append(Server("codis-server", [codis_server, "--bind", "127.0.0.1", "--port", str(port),
                                               "--log-level", "warn"], port))
    slots = [{"id": slot, "backend_addr": f"127.0.0.1:{servers[slot >= 512].port}"} for slot in range(1024)]
    path = os.path.join(workdir, "slots.json")
    with open(path, "w") as out:
        json.dump(slots, out)
    port = free_port()
    proxy = Server("codis-proxy", [codis_proxy, "--proxy-addr", f"127.0.0.1:{port}", "--fillslots", path,
                                   "--log-level", "warn"], port)
    return Path("codis-proxy", proxy, servers)


def start_twemproxy(workdir):
    servers = []
    for _ in range(2):
        port = free_port()
        servers.append(Server("redis-server", ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                               "--appendonly", "no"], port))
    port = free_port()
    config = os.path.join(workdir, "nutcracker.yml")
    with open(config, "w") as out:
        out.write(f"bench:\n  listen: 127.0.0.1:{port}\n  hash: fnv1a_64\n  distribution: ketama\n"
                  f"  redis: true\n  auto_eject_hosts: false\n  servers:\n")
        for server in servers:
            out.write(f"   - 127.0.0.1:{server.port}:1\n")
    # A stats port of its own: the default (22222) may be taken.
    proxy = Server("nutcracker", ["nutcracker", "-c", config, "-s", str(free_port())], port)
    return Path("twemproxy", proxy, servers)


def start_direct():
    port = free_port()
    server = Server("redis-server", ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                     "--appendonly", "no"], port)
    return Path("direct redis", server, [])


def run(path, test_args, pipeline, requests):
    before = path.front.cpu_seconds()
    output = subprocess.run(
        ["taskset", "-c", "1", "redis-benchmark", "-p", str(path.port), "-n", str(requests), "-r", "1000000",
         "-d", "32", "-c", "50", "-P", str(pipeline), "--csv", *test_args],
        capture_output=True, text=True, check=True,
    ).stdout
    cpu = path.front.cpu_seconds() - before
    rows = list(csv.DictReader(io.StringIO(output)))
    if not rows:
        sys.exit(f"no redis-benchmark output on {path.name}:\n{output}")
    row = rows[-1]
    return {"ops": float(row["rps"]), "p50": float(row["p50_latency_ms"]), "p99": float(row["p99_latency_ms"]),
            "cpu_us": cpu * 1e6 / requests}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codis-server", default="target/release/codis-server")
    parser.add_argument("--codis-proxy", default="target/release/codis-proxy")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--pipelined-requests", type=int, default=1_000_000)
    parser.add_argument("--command", default="just bench proxy")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="proxy-bench-")
    paths = []
    results = {}
    try:
        paths.append(start_ours(args.codis_server, args.codis_proxy, workdir))
        paths.append(start_twemproxy(workdir))
        paths.append(start_direct())
        for round_index in range(args.rounds):
            order = paths if round_index % 2 == 0 else paths[::-1]
            for pipeline in (1, 16):
                for label, test_args in TESTS:
                    requests = args.requests if pipeline == 1 else args.pipelined_requests
                    if label.startswith("M"):
                        requests //= 5
                    for path in order:
                        result = run(path, test_args, pipeline, requests)
                        results.setdefault((pipeline, label, path.name), []).append(result)
                        print(f"round {round_index + 1} -P {pipeline:2} {label:>15} {path.name:>12}: "
                              f"{result['ops']:>9.0f} ops/s p99 {result['p99']:.2f} ms "
                              f"cpu {result['cpu_us']:.2f} µs/req", file=sys.stderr)
    finally:
        for path in paths:
            path.stop()

    def median(pipeline, label, name, field):
        return statistics.median(run[field] for run in results[(pipeline, label, name)])

    print("# Proxy benchmark: codis-proxy vs twemproxy vs direct Redis")
    print()
    print(f"Command: `{args.command}` (`reports/proxy_bench.py`). Machine: {machine()}; nutcracker 0.5.0.")
    print()
    print(f"redis-benchmark `-c 50 -r 1000000 -d 32` on cpu 1; servers and proxies on cpu 0. {args.rounds} rounds, "
          "alternating order; medians. Ours: codis-proxy + 2 codis-server (slots split in halves). twemproxy: "
          "nutcracker + 2 redis-server 7.0. CPU µs/req is the proxy process's (the server's, for direct).")
    print()
    print("| -P | test | path | ops/s | p50 ms | p99 ms | CPU µs/req | ops/s vs twemproxy | CPU vs twemproxy |")
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for pipeline in (1, 16):
        for label, _ in TESTS:
            theirs_ops = median(pipeline, label, "twemproxy", "ops")
            theirs_cpu = median(pipeline, label, "twemproxy", "cpu_us")
            for path in paths:
                ops = median(pipeline, label, path.name, "ops")
                cpu = median(pipeline, label, path.name, "cpu_us")
                print(f"| {pipeline} | {label} | {path.name} | {ops:,.0f} | {median(pipeline, label, path.name, 'p50'):.2f} "
                      f"| {median(pipeline, label, path.name, 'p99'):.2f} | {cpu:.2f} | {ops / theirs_ops:.2f} "
                      f"| {cpu / theirs_cpu:.2f} |")
    print()
    print("Targets (issue 5): with `-P 16` at least twemproxy's ops/s and no worse p99; without pipelining no more "
          "proxy CPU per request than twemproxy; MGET/MSET of 10 keys at ≥ 1.5× twemproxy.")


if __name__ == "__main__":
    main()
