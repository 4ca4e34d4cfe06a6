#!/usr/bin/env bash
# Runs the benchmarks (bench/run.ts picks up every case in bench/cases/). Args: case names to run (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
exec npx tsx bench/run.ts "$@"
