# Every entry point of the project. `just --list` shows them.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Show the recipes.
default:
    @just --list

# Start a local cluster on 127.0.0.1 in the foreground (`codis demo`): a dashboard with the
# filesystem coordinator, two groups of a master and a replica (codis-servers on 6379-6382), two
# spare servers (6383, 6384), one proxy on 19000 (admin 11080), slots rebalanced, and the web
# console on http://127.0.0.1:9090/; it prints how to connect. Ctrl-C stops everything. Options
# go to `codis demo` (`just demo --help`).
demo *ARGS:
    cargo build --release --quiet -p prod
    target/release/codis demo {{ARGS}}

# Run every test (unit, property, simulation, loopback, differential against redis-server), as CI
# does.
test: deps
    cargo test --workspace --all-targets
    cargo test --workspace --doc

# Install the real peers tests talk to (Debian packages), if missing: redis-server and redis-tools
# 7.0 for the differential and benchmark tests, etcd-server 3.4 for the coordinator's conformance
# suite, chromium and chromium-driver for the web console's browser test.
deps:
    #!/usr/bin/env bash
    set -euo pipefail
    missing=()
    command -v redis-server >/dev/null || missing+=(redis-server)
    command -v redis-cli >/dev/null || missing+=(redis-tools)
    command -v redis-benchmark >/dev/null || missing+=(redis-tools)
    command -v etcd >/dev/null || missing+=(etcd-server)
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    [ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
    if [ ${#missing[@]} -gt 0 ]; then
        sudo=""
        if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
        echo "installing: ${missing[*]}"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
    fi

# Formatting and clippy (with the one-code-path bans in clippy.toml), warnings as errors; no
# import circles between the files of a crate (.ci/import-cycles.py says which are allowed).
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    python3 .ci/import-cycles.py --self-test
    python3 .ci/import-cycles.py

# Replay one simulated run: `just sim SEED=7 [SCENARIO=ping]` (or `just sim 7 ping`). Same seed, same
# run, same digest; the trace goes to target/sim/.
sim *ARGS:
    #!/usr/bin/env bash
    set -euo pipefail
    seed=1; scenario=ping
    for arg in {{ARGS}}; do
        case "$arg" in
            SEED=*) seed="${arg#SEED=}" ;;
            SCENARIO=*) scenario="${arg#SCENARIO=}" ;;
            [0-9]*) seed="$arg" ;;
            *) scenario="$arg" ;;
        esac
    done
    cargo run --quiet --profile simulation -p scenarios --bin sim -- --seed "$seed" --scenario "$scenario"

# List the simulation scenarios.
scenarios:
    cargo run --quiet --profile simulation -p scenarios --bin sim -- --list

# A long search for differences from redis-server 7.0 with generated command sequences:
# `just soak-differential 20000 7` runs 20,000 sequences from seed 7. Not part of `just test`.
soak-differential CASES="20000" SEED="1": deps
    PROPTEST_CASES={{CASES}} PROPTEST_RNG_SEED={{SEED}} cargo test -p server --test differential generated

# Many seeds of one scenario, stopping at the first failure: `just soak COUNT=1000 SCENARIO=ping
# FROM=1`. Long; not part of `just test`.
soak *ARGS:
    #!/usr/bin/env bash
    set -euo pipefail
    count=1000; scenario=ping; from=1
    for arg in {{ARGS}}; do
        case "$arg" in
            COUNT=*) count="${arg#COUNT=}" ;;
            SCENARIO=*) scenario="${arg#SCENARIO=}" ;;
            FROM=*) from="${arg#FROM=}" ;;
            *) echo "unknown argument $arg (use COUNT=, SCENARIO=, FROM=)" >&2; exit 2 ;;
        esac
    done
    cargo run --quiet --profile simulation -p scenarios --bin sim -- --seed "$from" --count "$count" --scenario "$scenario"

# Every failover scenario over many seeds, measured: time to fail over, time until writes are
# accepted again, acknowledged writes lost, per replication mode. Writes reports/failover.md.
failover-report COUNT="50" FROM="100":
    cargo run --quiet --profile simulation -p scenarios --bin failover-report -- --seed {{FROM}} --count {{COUNT}}

# Rewrite the command table (nodes/commands/data) from redis-server 7.0's COMMAND INFO and
# COMMAND DOCS, keeping our own fields (proxy routes, hidden flags, key functions).
commands-regen: deps
    #!/usr/bin/env bash
    set -euo pipefail
    dir=$(mktemp -d); port=27990
    redis-server --port $port --save '' --appendonly no --dir "$dir" --daemonize yes --pidfile "$dir/pid" >/dev/null
    trap 'kill $(cat "$dir/pid") 2>/dev/null; rm -rf "$dir"' EXIT
    until redis-cli -p $port ping >/dev/null 2>&1; do sleep 0.1; done
    cargo run --quiet -p commands --example regen -- 127.0.0.1:$port

# Fuzz the RESP decoders (needs cargo-fuzz; uses nightly if installed, else RUSTC_BOOTSTRAP).
fuzz SECONDS="600":
    command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
    cd nodes/resp/fuzz && mkdir -p corpus/decode && \
      if rustup toolchain list | grep -q '^nightly'; then toolchain=+nightly; else toolchain=; export RUSTC_BOOTSTRAP=1; fi && \
      cargo $toolchain fuzz run decode corpus/decode seeds -- -dict=resp.dict -max_total_time={{SECONDS}} -print_final_stats=1

# Benchmarks, with reports written to reports/: `just bench` runs every one, `just bench server` or
# `just bench resp` one of them.
bench WHAT="all":
    #!/usr/bin/env bash
    set -euo pipefail
    case "{{WHAT}}" in
        all) just bench-resp; just bench-server; just bench-migrate; just bench-proxy ;;
        resp) just bench-resp ;;
        server) just bench-server ;;
        migrate) just bench-migrate ;;
        proxy) just bench-proxy ;;
        *) echo "unknown benchmark {{WHAT}} (use resp, server, migrate, proxy or nothing for all)" >&2; exit 2 ;;
    esac

# codis-server against redis-server 7.0 with redis-benchmark, side by side (about 12 minutes);
# writes reports/server.md. `just bench-server --rounds 1` for a quick look.
bench-server *ARGS: deps
    cargo build --release --quiet -p prod --bin codis-server
    python3 reports/server_bench.py --command "just bench server" {{ARGS}} > reports/server.md.new
    python3 reports/aof_bench.py >> reports/server.md.new
    python3 reports/snapshot_bench.py >> reports/server.md.new
    mv reports/server.md.new reports/server.md
    @echo "wrote reports/server.md"

# RESP parse/encode throughput against redis-protocol; writes reports/resp-bench.md.
# Slot migration between two codis-servers (sync and async; small keys and one big hash), with
# other clients' latency meanwhile, beside redis-server's MIGRATE and a redis-cli --pipe load.
bench-migrate *ARGS: deps
    cargo build --release --quiet -p prod --bin codis-server
    python3 reports/migration_bench.py --command "just bench migrate" {{ARGS}} > reports/migration.md.new
    mv reports/migration.md.new reports/migration.md
    @echo "wrote reports/migration.md"

# codis-proxy in front of two codis-servers, beside twemproxy (Debian's nutcracker) in front of two
# redis-servers and direct redis-server, under redis-benchmark.
bench-proxy *ARGS: deps
    #!/usr/bin/env bash
    set -euo pipefail
    if ! command -v nutcracker >/dev/null; then
        sudo=""; if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
        $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nutcracker
    fi
    cargo build --release --quiet -p prod --bin codis-server --bin codis-proxy
    python3 reports/proxy_bench.py --command "just bench proxy" {{ARGS}} > reports/proxy.md.new
    mv reports/proxy.md.new reports/proxy.md
    echo "wrote reports/proxy.md"

bench-resp:
    cargo bench -p resp --bench resp -- --noplot
    python3 reports/criterion_report.py --title "RESP codec: ours vs redis-protocol 6" \
      --command "just bench-resp" --groups "decode/" "encode/" > reports/resp-bench.md
    @echo "wrote reports/resp-bench.md"
