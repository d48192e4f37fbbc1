#!/usr/bin/env python3
"""Turns criterion's saved estimates (target/criterion/**/new/) into a markdown report.

Every row is a median of criterion's samples from the most recent `cargo bench` run; each group is
compared with the `redis-protocol:` entry of the same group and input, measured in that same run,
so the ratios are what to read (absolute numbers move ~20-30% between runs on this 2-core box).
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import subprocess


def load(criterion_dir):
    rows = []
    for bench in sorted(pathlib.Path(criterion_dir).glob("**/new/benchmark.json")):
        meta = json.loads(bench.read_text())
        estimates = json.loads((bench.parent / "estimates.json").read_text())
        throughput = meta.get("throughput") or {}
        rows.append({
            "group": meta["group_id"],
            "function": meta["function_id"],
            "median_ns": estimates["median"]["point_estimate"],
            "bytes": throughput.get("Bytes") or throughput.get("BytesDecimal"),
        })
    return rows


def human_time(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.2f} {unit}"
    return f"{ns:.0f} ns"


def human_rate(byte_count, ns):
    if not byte_count:
        return ""
    per_second = byte_count / (ns / 1e9)
    return f"{per_second / 2**20:.0f} MiB/s"


def machine():
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    return f"{os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}, {rustc}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--title", required=True)
    parser.add_argument("--command", required=True)
    parser.add_argument("--groups", nargs="+", required=True, help="group-id prefixes to include")
    parser.add_argument("--criterion-dir", default="target/criterion")
    args = parser.parse_args()

    rows = [row for row in load(args.criterion_dir) if row["group"].startswith(tuple(args.groups))]
    if not rows:
        raise SystemExit(f"no criterion results under {args.criterion_dir} for {args.groups}")
    print(f"# {args.title}\n")
    print(f"Produced by `{args.command}` on {datetime.date.today().isoformat()}; machine: {machine()}.")
    print("Medians of criterion's samples. \"vs redis-protocol\" divides redis-protocol's median in the same group")
    print("(same input, same run) by this row's: above 1.0 means ours is faster.\n")
    groups = []
    for row in rows:
        if row["group"] not in groups:
            groups.append(row["group"])
    for group in groups:
        members = [row for row in rows if row["group"] == group]
        baseline = next((row for row in members if row["function"].startswith("redis-protocol")), None)
        print(f"## {group}\n")
        print("| implementation | median | throughput | vs redis-protocol |")
        print("|---|---:|---:|---:|")
        for row in members:
            ratio = ""
            if baseline and row is not baseline:
                ratio = f"{baseline['median_ns'] / row['median_ns']:.2f}×"
            print(f"| {row['function']} | {human_time(row['median_ns'])} | {human_rate(row['bytes'], row['median_ns'])} | {ratio} |")
        print()


if __name__ == "__main__":
    main()
