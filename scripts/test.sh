#!/usr/bin/env bash
# The test command (`npm test`): type-check, provision the test bed, run every test.
#   bash scripts/test.sh [vitest args...]    e.g. npm test -- test/unit
# Exit code: tsc's if it fails, else vitest's.
set -uo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*" >&2; }
t0=$SECONDS

if [ ! -d node_modules ]; then
  step "npm ci"
  npm ci --no-audit --no-fund || exit $?
fi

step "tsc --noEmit"
npx tsc --noEmit || { rc=$?; echo "test: type errors (tsc exit $rc)" >&2; exit "$rc"; }
echo "test: tsc ok ($((SECONDS - t0)) s)" >&2

step "provision test bed"
t1=$SECONDS
bash scripts/provision.sh
rc=$?
# provision.sh exits 3 when it cannot provision here (not root, or not Debian): the
# integration suites then skip loudly. Any other failure is a broken test bed.
if [ "$rc" -eq 3 ]; then
  echo "test: WARNING: test bed not provisioned on this machine; integration suites that need it will SKIP." >&2
elif [ "$rc" -ne 0 ]; then
  echo "test: provisioning failed (exit $rc): the test bed must be complete here." >&2
  exit "$rc"
fi
echo "test: provision done ($((SECONDS - t1)) s)" >&2

step "vitest run $*"
report=$(mktemp)
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@"
rc=$?
# One plain closing line that any CI reader understands.
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
' "$report" 2>/dev/null || echo "tests: no report (vitest exit $rc)"
rm -f "$report"
echo "test: vitest exit $rc (total $((SECONDS - t0)) s)" >&2
exit "$rc"
