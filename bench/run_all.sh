#!/usr/bin/env bash
# Run every benchmark once and print its Markdown tables (paste them into bench/README.md).
# Usage: bench/run_all.sh [python]   (default: .venv/bin/python of the repository)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-.venv/bin/python}"
echo "# benchmarks $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores"
# Airflow's own INFO log lines go to stderr/stdout of the children; keep only the tables.
run() { echo; echo "## $*"; "$PY" "$@" 2>&1 | grep -v -E '^\S+Z \[(info|warning|error|debug) *\]' ; }
run bench/bench_sensor_slots.py
run bench/bench_triggerer.py --triggers 1000 --poll-interval 2 --duration 30 --split 2
run bench/bench_triggerer.py --triggers 5000 --poll-interval 10 --duration 100 --split 2   # ~6 min
run bench/bench_streaming.py
run bench/bench_postgres_load.py
run bench/bench_import.py
run bench/bench_load_memory.py   # owned by the load helper; ~2 min at its default 8M rows
