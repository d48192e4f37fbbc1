#!/usr/bin/env python3
"""Side-by-side benchmark of codis-server against redis-server 7.0 (`just bench server`).

Both servers start with the same settings (no persistence, 16 databases). For every round and
every `redis-benchmark` test, the two contenders run back to back in alternating order (A B, then
B A), so drift in the machine hits both alike; the report gives medians over the rounds.

Pinned as in ../shared/reference/peers.md: each server on cpu 0, redis-benchmark on cpu 1. Without
pipelining redis-benchmark is the bottleneck (it burns its core at ~12 µs per request), so there
the server's CPU per request (user+sys from /proc, divided by requests) is the figure to compare;
with `-P 16` the server is the bottleneck and ops/s and p99 compare too.

Memory: `DEBUG POPULATE 1000000 key 32` into an empty server, then `used_memory` and RSS, minus
what the empty server reported.
"""

import argparse
import csv
import datetime
import io
import os
import platform
import socket
import statistics
import subprocess
import sys
import time

TESTS = ["set", "get", "incr", "lpush", "rpop", "sadd", "hset", "zadd", "lrange_100", "mset"]
TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(port, process):
    for _ in range(200):
        if process.poll() is not None:
            sys.exit(f"server on port {port} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                # A RESP array, not an inline command: nutcracker reads only arrays.
                sock.sendall(b"*1\r\n$4\r\nPING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit(f"server on port {port} never answered PING")


class Server:
    """One contender: a process pinned to cpu 0, with its CPU time read from /proc."""

    def __init__(self, name, argv, port):
        self.name = name
        self.port = port
        self.process = subprocess.Popen(
            ["taskset", "-c", "0", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_ready(port, self.process)

    def cpu_seconds(self):
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        # utime and stime are fields 14 and 15 of the whole line; 12 and 13 after the ")".
        return (int(fields[11]) + int(fields[12])) / TICKS

    def rss_bytes(self):
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def cli(self, *args):
        return subprocess.run(
            ["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, check=True
        ).stdout

    def info(self, section):
        fields = {}
        for line in self.cli("INFO", section).splitlines():
            if ":" in line:
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        return fields

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def run_test(server, test, pipeline, requests):
    """One redis-benchmark test against one server: ops/s, p50, p99 and server CPU µs/request."""
    before = server.cpu_seconds()
    output = subprocess.run(
        [
            "taskset", "-c", "1", "redis-benchmark", "-p", str(server.port), "-t", test, "-n", str(requests),
            "-r", "1000000", "-d", "32", "-c", "50", "-P", str(pipeline), "--csv",
        ],
        capture_output=True, text=True, check=True,
    ).stdout
    cpu = server.cpu_seconds() - before
    rows = list(csv.DictReader(io.StringIO(output)))
    if not rows:
        sys.exit(f"no redis-benchmark output for {test} on {server.name}:\n{output}")
    # LRANGE_100 first fills its list with an "LPUSH (needed to benchmark LRANGE)" row; the test's own row is last.
    # That LPUSH's CPU time is counted in, for both servers alike.
    row = rows[-1]
    return {
        "label": row["test"],
        "ops": float(row["rps"]),
        "p50": float(row["p50_latency_ms"]),
        "p99": float(row["p99_latency_ms"]),
        "cpu_us": cpu * 1e6 / requests,
    }


def memory(server, keys):
    empty_used = int(server.info("memory")["used_memory"])
    empty_rss = server.rss_bytes()
    server.cli("DEBUG", "POPULATE", str(keys), "key", "32")
    assert int(server.cli("DBSIZE").strip()) == keys
    used = int(server.info("memory")["used_memory"])
    rss = server.rss_bytes()
    server.cli("FLUSHALL")
    return {"used_per_key": (used - empty_used) / keys, "rss_per_key": (rss - empty_rss) / keys, "used": used, "rss": rss}


def start(codis_server):
    """Both contenders with the same settings: no persistence, DEBUG allowed (for POPULATE)."""
    redis_port, codis_port = free_port(), free_port()
    redis = Server(
        "redis-server",
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--enable-debug-command", "yes", "--daemonize", "no"],
        redis_port,
    )
    codis = Server(
        "codis-server",
        [codis_server, "--bind", "127.0.0.1", "--port", str(codis_port), "--enable-debug-command", "yes"],
        codis_port,
    )
    return [redis, codis]


def machine():
    cpu = "unknown CPU"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()
    redis = next((word for word in version if word.startswith("v=")), "v=?")[2:]
    return f"{os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}; redis-server {redis}"


def ratio(ours, theirs):
    return f"{ours / theirs:.2f}" if theirs else "–"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codis-server", default="target/release/codis-server")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200_000, help="requests per test without pipelining")
    parser.add_argument("--pipelined-requests", type=int, default=1_000_000, help="requests per test with -P 16")
    parser.add_argument("--tests", default=",".join(TESTS))
    parser.add_argument("--keys", type=int, default=1_000_000, help="keys loaded for the memory figures")
    parser.add_argument("--command", default="just bench server")
    args = parser.parse_args()
    tests = args.tests.split(",")

    contenders = start(args.codis_server)
    results = {}  # (pipeline, test, name) -> list of runs
    try:
        for round_index in range(args.rounds):
            for server in contenders:
                server.cli("FLUSHALL")
            for pipeline, requests in ((1, args.requests), (16, args.pipelined_requests)):
                for test in tests:
                    order = contenders if round_index % 2 == 0 else contenders[::-1]
                    for server in order:
                        run = run_test(server, test, pipeline, requests)
                        results.setdefault((pipeline, test, server.name), []).append(run)
                        print(
                            f"round {round_index + 1} -P {pipeline:2} {run['label']:>24} {server.name:>12}: "
                            f"{run['ops']:>10.0f} ops/s p50 {run['p50']:.3f} p99 {run['p99']:.3f} ms "
                            f"cpu {run['cpu_us']:.2f} µs/req",
                            file=sys.stderr,
                        )
    finally:
        for server in contenders:
            server.stop()
    # Fresh processes: after the benchmark the allocators hold freed pages, which would hide
    # what the keys take in RSS.
    contenders = start(args.codis_server)
    try:
        mem = {server.name: memory(server, args.keys) for server in contenders}
    finally:
        for server in contenders:
            server.stop()

    def median(pipeline, test, name, field):
        return statistics.median(run[field] for run in results[(pipeline, test, name)])

    out = []
    out.append("# codis-server against redis-server, side by side\n")
    out.append(f"Command: `{args.command}` (`python3 reports/server_bench.py`, {args.rounds} rounds). ")
    out.append(f"Run {datetime.date.today().isoformat()} on {machine()}.\n")
    out.append(
        "Each test: `redis-benchmark -t TEST -n N -r 1000000 -d 32 -c 50 -P {1|16} --csv`, redis-benchmark pinned "
        "to cpu 1, each server pinned to cpu 0, the two servers alternating (A B / B A) within every round; "
        f"N = {args.requests} without pipelining, {args.pipelined_requests} with. Figures are medians over the "
        "rounds; *ratio* is ours ÷ redis (above 1 is better for ops/s, below 1 is better for latency and CPU). "
        "CPU µs/req is the server process's user+sys time from /proc divided by requests.\n"
    )
    out.append(
        "Without pipelining redis-benchmark saturates its core first, so ops/s and latency there mostly measure "
        "the load generator; **CPU µs per request** is the comparison. With `-P 16` the server is the bottleneck "
        "and ops/s and p99 compare directly.\n"
    )
    shortfalls = []
    for pipeline in (1, 16):
        out.append(f"\n## {'Without pipelining' if pipeline == 1 else 'Pipelined, -P 16'}\n")
        out.append(
            "| test | redis ops/s | ours ops/s | ratio | redis p50/p99 ms | ours p50/p99 ms | p99 ratio "
            "| redis CPU µs/req | ours CPU µs/req | CPU ratio |"
        )
        out.append("|---|---:|---:|---:|---|---|---:|---:|---:|---:|")
        for test in tests:
            label = results[(pipeline, test, "redis-server")][0]["label"]
            r = {f: median(pipeline, test, "redis-server", f) for f in ("ops", "p50", "p99", "cpu_us")}
            o = {f: median(pipeline, test, "codis-server", f) for f in ("ops", "p50", "p99", "cpu_us")}
            out.append(
                f"| {label} | {r['ops']:,.0f} | {o['ops']:,.0f} | {ratio(o['ops'], r['ops'])} "
                f"| {r['p50']:.3f} / {r['p99']:.3f} | {o['p50']:.3f} / {o['p99']:.3f} | {ratio(o['p99'], r['p99'])} "
                f"| {r['cpu_us']:.2f} | {o['cpu_us']:.2f} | {ratio(o['cpu_us'], r['cpu_us'])} |"
            )
            shortfalls += short_of_target(pipeline, label, r, o)
    out.append(f"\n## Memory: {args.keys:,} keys of 32-byte string values (`DEBUG POPULATE {args.keys} key 32`)\n")
    out.append("| server | used_memory bytes/key | RSS bytes/key | used_memory total | RSS total |")
    out.append("|---|---:|---:|---:|---:|")
    for name, figures in mem.items():
        out.append(
            f"| {name} | {figures['used_per_key']:.1f} | {figures['rss_per_key']:.1f} "
            f"| {figures['used'] / 2**20:.1f} MiB | {figures['rss'] / 2**20:.1f} MiB |"
        )
    r, o = mem["redis-server"], mem["codis-server"]
    out.append(
        f"\nRatio ours ÷ redis: used_memory {ratio(o['used_per_key'], r['used_per_key'])}, "
        f"RSS {ratio(o['rss_per_key'], r['rss_per_key'])}. "
        "redis-server uses jemalloc; codis-server's used_memory is its own estimate of the data's heap (see README).\n"
    )
    out.append("\n## Against the target\n")
    out.append(
        "The target: match or beat redis-server on CPU per request without pipelining, on ops/s and p99 with "
        "`-P 16`, and stay within 1.25× its memory per key.\n"
    )
    if o["used_per_key"] > 1.25 * r["used_per_key"]:
        shortfalls.append(f"memory: used_memory {ratio(o['used_per_key'], r['used_per_key'])}× redis-server's")
    if shortfalls:
        out.append("Short of it in this run (where the time goes: `reports/server-profile.md`):\n")
        out.extend(f"- {line}" for line in shortfalls)
    else:
        out.append("Met in every row of this run.")
    print("\n".join(out))


def short_of_target(pipeline, label, r, o):
    """The ways one row falls short of redis-server: CPU per request without pipelining, ops/s and
    p99 with it."""
    lines = []
    if pipeline == 1:
        if o["cpu_us"] > r["cpu_us"]:
            lines.append(f"{label} without pipelining: {ratio(o['cpu_us'], r['cpu_us'])}× redis-server's CPU per request")
    else:
        if o["ops"] < r["ops"]:
            lines.append(f"{label} -P 16: {ratio(o['ops'], r['ops'])}× redis-server's ops/s")
        if o["p99"] > r["p99"]:
            lines.append(f"{label} -P 16: {ratio(o['p99'], r['p99'])}× redis-server's p99")
    return lines


if __name__ == "__main__":
    main()
