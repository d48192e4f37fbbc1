#!/usr/bin/env python3
"""Snapshot benchmark (part of `just bench server`): SAVE and load of a 1,000,000-key dataset,
codis-server beside redis-server 7.0, each loading both servers' files; and the full sync of a
replica of that dataset (each server replicating its own kind).

Prints a Markdown section on stdout. Each server is pinned to cpu 0; times are wall clock,
medians of the rounds. Load time is from starting the process to its first PONG (our server
listens once loaded; redis-server answers LOADING until then).
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_bench import free_port  # noqa: E402


def send(port, *args):
    """One command over a fresh connection; returns the first reply line."""
    with socket.create_connection(("127.0.0.1", port), timeout=600) as sock:
        payload = f"*{len(args)}\r\n".encode()
        for arg in args:
            arg = str(arg).encode()
            payload += b"$%d\r\n%s\r\n" % (len(arg), arg)
        sock.sendall(payload)
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
        return reply.decode(errors="replace").strip()


def ready(port):
    try:
        return send(port, "PING") == "+PONG"
    except OSError:
        return False


def start(kind, codis_server, directory, cpu="0"):
    port = free_port()
    if kind == "redis-server":
        # No delay before a diskless copy (Redis 7 waits 5 s for more replicas by default).
        argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", directory,
                "--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no",
                "--enable-debug-command", "yes", "--repl-diskless-sync-delay", "0"]
    else:
        argv = [codis_server, "--port", str(port), "--bind", "127.0.0.1", "--dir", directory,
                "--dbfilename", "dump.rdb", "--enable-debug-command", "yes", "--log-level", "warn"]
    began = time.monotonic()
    process = subprocess.Popen(["taskset", "-c", cpu, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not ready(port):
        if process.poll() is not None:
            sys.exit(f"{kind} exited with {process.returncode}")
        if time.monotonic() - began > 600:
            sys.exit(f"{kind} did not come up")
        time.sleep(0.005)
    return process, port, time.monotonic() - began


def stop(process):
    process.kill()
    process.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--codis-server", default="target/release/codis-server")
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="snapshot-bench-")
    kinds = ["redis-server", "codis-server"]
    saves = {kind: [] for kind in kinds}
    loads = {(loader, writer): [] for loader in kinds for writer in kinds}
    sizes = {}
    syncs = {kind: [] for kind in kinds}
    try:
        for _ in range(args.rounds):
            # Each server fills itself and saves.
            for writer in kinds:
                directory = os.path.join(work, writer)
                shutil.rmtree(directory, ignore_errors=True)
                os.makedirs(directory)
                process, port, _ = start(writer, args.codis_server, directory)
                reply = send(port, "DEBUG", "POPULATE", args.keys, "key", 16)
                if not reply.startswith("+OK"):
                    sys.exit(f"{writer} DEBUG POPULATE: {reply}")
                began = time.monotonic()
                reply = send(port, "SAVE")
                saves[writer].append(time.monotonic() - began)
                if reply != "+OK":
                    sys.exit(f"{writer} SAVE: {reply}")
                stop(process)
                sizes[writer] = os.path.getsize(os.path.join(directory, "dump.rdb"))
            # Each server loads each file.
            for writer in kinds:
                for loader in kinds:
                    directory = os.path.join(work, f"load-{loader}-{writer}")
                    shutil.rmtree(directory, ignore_errors=True)
                    os.makedirs(directory)
                    shutil.copy(os.path.join(work, writer, "dump.rdb"), directory)
                    process, port, took = start(loader, args.codis_server, directory)
                    keys = send(port, "DBSIZE")
                    stop(process)
                    if keys != f":{args.keys}":
                        sys.exit(f"{loader} loaded {keys} keys from {writer}'s file, not {args.keys}")
                    loads[(loader, writer)].append(took)
            # Each server's replica copies it: from REPLICAOF to holding every key.
            for kind in kinds:
                directories = [os.path.join(work, f"sync-{kind}-{role}") for role in ("master", "replica")]
                for directory in directories:
                    shutil.rmtree(directory, ignore_errors=True)
                    os.makedirs(directory)
                master, master_port, _ = start(kind, args.codis_server, directories[0], cpu="0")
                send(master_port, "DEBUG", "POPULATE", args.keys, "key", 16)
                replica, replica_port, _ = start(kind, args.codis_server, directories[1], cpu="1")
                began = time.monotonic()
                reply = send(replica_port, "REPLICAOF", "127.0.0.1", master_port)
                if not reply.startswith("+OK"):
                    sys.exit(f"{kind} REPLICAOF: {reply}")
                while send(replica_port, "DBSIZE") != f":{args.keys}":
                    if time.monotonic() - began > 600:
                        sys.exit(f"{kind}'s replica never held {args.keys} keys")
                    time.sleep(0.005)
                syncs[kind].append(time.monotonic() - began)
                stop(replica)
                stop(master)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    median = statistics.median
    print(f"## Snapshots: {args.keys:,} keys\n")
    print(f"`DEBUG POPULATE {args.keys} key 16` (string values), then `SAVE`, then each server started on each "
          f"server's file (start to first PONG). Pinned to cpu 0; medians of {args.rounds} rounds.\n")
    print("| | redis-server 7.0 | codis-server | ours ÷ redis |")
    print("|---|---:|---:|---:|")
    redis_save, ours_save = median(saves["redis-server"]), median(saves["codis-server"])
    print(f"| SAVE (s) | {redis_save:.2f} | {ours_save:.2f} | {ours_save / redis_save:.2f} |")
    print(f"| file size (MB) | {sizes['redis-server'] / 1e6:.1f} | {sizes['codis-server'] / 1e6:.1f} | "
          f"{sizes['codis-server'] / sizes['redis-server']:.2f} |")
    for writer in kinds:
        theirs, ours = median(loads[("redis-server", writer)]), median(loads[("codis-server", writer)])
        print(f"| load {writer}'s file (s) | {theirs:.2f} | {ours:.2f} | {ours / theirs:.2f} |")
    theirs, ours = median(syncs["redis-server"]), median(syncs["codis-server"])
    print(f"| full sync of a replica (s) | {theirs:.2f} | {ours:.2f} | {ours / theirs:.2f} |")
    print()
    print("Full sync: a master holding the keys (cpu 0) and an empty replica of the same kind (cpu 1) on "
          "loopback, from `REPLICAOF` until the replica holds every key. Redis' master streams its copy "
          "without touching the disk (`repl-diskless-sync yes`, delay set to 0); ours encodes it in memory "
          "under its lock and sends it.\n")


if __name__ == "__main__":
    main()
