#!/usr/bin/env bash
# Runs the benchmarks (bench/run.ts picks up every case in bench/cases/). Args: case names to run (default: all).
# The whole-process cases run the CLI as a user gets it: from dist/, rebuilt first when a source is newer.
set -euo pipefail
cd "$(dirname "$0")/.."
node --input-type=module -e "import { distIsFresh } from './bin/dist-freshness.js'; process.exit(distIsFresh(process.cwd()) ? 0 : 1)" || npx tsup --no-dts --silent
exec npx tsx bench/run.ts "$@"
