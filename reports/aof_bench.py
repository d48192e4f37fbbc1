#!/usr/bin/env python3
"""The append-only log side by side: codis-server against redis-server 7.0, both with
`appendonly yes`, under redis-benchmark (the `appendonly` part of `just bench server`).

Each policy gets fresh servers whose files go to a temporary directory; within every round the
two contenders alternate (A B, then B A) per test, and the report gives medians over the rounds.
Pinned as the rest of `just bench server`: servers on cpu 0, redis-benchmark on cpu 1. The
server's CPU time includes every thread (Redis syncs from a background thread, ours from a
tokio worker).
"""

import argparse
import datetime
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_bench  # noqa: E402  (the shared helpers: Server, run_test, free_port)

# (policy, test, pipeline)
CASES = [
    ("everysec", "set", 1), ("everysec", "incr", 1), ("everysec", "lpush", 1),
    ("everysec", "set", 16), ("everysec", "incr", 16), ("everysec", "lpush", 16),
    ("always", "set", 1), ("always", "set", 16),
]


def start(codis_server, policy, directory):
    redis_port, codis_port = server_bench.free_port(), server_bench.free_port()
    redis_dir, codis_dir = os.path.join(directory, "redis"), os.path.join(directory, "codis")
    os.makedirs(redis_dir)
    os.makedirs(codis_dir)
    redis = server_bench.Server(
        "redis-server",
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--dir", redis_dir,
         "--appendonly", "yes", "--appendfsync", policy, "--daemonize", "no"],
        redis_port,
    )
    codis = server_bench.Server(
        "codis-server",
        [codis_server, "--bind", "127.0.0.1", "--port", str(codis_port), "--dir", codis_dir,
         "--appendonly", "yes", "--appendfsync", policy],
        codis_port,
    )
    return [redis, codis]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--codis-server", default="target/release/codis-server")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200_000, help="requests per test without pipelining")
    parser.add_argument("--pipelined-requests", type=int, default=1_000_000, help="requests per test with -P 16")
    args = parser.parse_args()

    results = {}
    for policy in sorted({case[0] for case in CASES}, reverse=True):
        with tempfile.TemporaryDirectory(prefix="aof-bench-") as directory:
            servers = start(args.codis_server, policy, directory)
            try:
                for round_index in range(args.rounds):
                    order = servers if round_index % 2 == 0 else list(reversed(servers))
                    for case in [case for case in CASES if case[0] == policy]:
                        _, test, pipeline = case
                        requests = args.requests if pipeline == 1 else args.pipelined_requests
                        for server in order:
                            result = server_bench.run_test(server, test, pipeline, requests)
                            results.setdefault((case, server.name), []).append(result)
            finally:
                for server in servers:
                    server.stop()

    def median(case, name, field):
        return statistics.median(result[field] for result in results[(case, name)])

    print("## Append-only log: `appendonly yes`\n")
    print(f"Produced by `python3 reports/aof_bench.py` (part of `just bench server`), {args.rounds} rounds, "
          f"run {datetime.date.today().isoformat()}. Both servers log every write to their own directory "
          "(Redis 7's multi-part layout for both); `redis-benchmark -t TEST -n N -r 1000000 -d 32 -c 50 -P P`, "
          "pinned as above, medians over the rounds. With `always` neither replies before the write is synced; "
          "both sync once for all the writes of a round of clients.\n")
    print("| policy | test | -P | redis ops/s | ours ops/s | ratio | redis p99 ms | ours p99 ms | redis CPU µs/req | ours CPU µs/req | CPU ratio |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for case in CASES:
        policy, test, pipeline = case
        theirs_ops, ours_ops = median(case, "redis-server", "ops"), median(case, "codis-server", "ops")
        theirs_cpu, ours_cpu = median(case, "redis-server", "cpu_us"), median(case, "codis-server", "cpu_us")
        print(f"| {policy} | {test.upper()} | {pipeline} | {theirs_ops:,.0f} | {ours_ops:,.0f} | {ours_ops / theirs_ops:.2f} | "
              f"{median(case, 'redis-server', 'p99'):.3f} | {median(case, 'codis-server', 'p99'):.3f} | "
              f"{theirs_cpu:.2f} | {ours_cpu:.2f} | {ours_cpu / theirs_cpu:.2f} |")
    print()


if __name__ == "__main__":
    main()
