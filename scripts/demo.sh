#!/usr/bin/env bash
# The main job (`npm run demo`): check what the demo needs and, as root on Debian, install what is
# missing (as scripts/provision.sh does for `npm test`); then install the npm dependencies, build a
# demo image offline (FROM scratch plus a static busybox: no registry) into out/hello.tar, and print
# how to load it.
#
#   bash scripts/demo.sh           # check, install what is missing (root on Debian), build
#   bash scripts/demo.sh --check   # only report what is missing, change nothing
#
# What it needs: Node >= 20 with npm; a static busybox (Debian: busybox-static), the image's
# userland; and, as root, where examples/hello/build.ts adds a RUN step, an OCI runtime (Debian:
# runc), slirp4netns (Debian: slirp4netns), the RUN step's private network, and getfattr (Debian:
# attr), which the RUN layer diff reads overlay's markers and capabilities with. Without root the build is COPY-only and needs
# neither.
# Exit codes: 0 built (or, with --check, nothing missing); 3 something is missing that cannot be
# installed here, named with the command that installs it, before anything is built; 1 other failures.
set -euo pipefail
cd "$(dirname "$0")/.."

CHECK_ONLY=0
for arg in "$@"; do
  case "$arg" in
    --check) CHECK_ONLY=1 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { printf 'demo: %s\n' "$*" >&2; }

# shellcheck source=lib/host.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/host.sh"

# A program on PATH or in the sbin dirs the CLI also searches (root's PATH may lack them): an
# executable regular file (bash's `command -v` also names non-executable files).
have() {
  local d
  local IFS=:
  for d in $PATH /usr/local/sbin /usr/sbin /sbin; do
    [ -n "$d" ] && [ -f "$d/$1" ] && [ -x "$d/$1" ] && return 0
  done
  return 1
}

# Prints "package<TAB>why" for every missing prerequisite that a Debian package provides.
missing_packages() {
  static_busybox >/dev/null || printf 'busybox-static\ta static /usr/bin/busybox, the userland of the demo image\n'
  if is_root; then
    # runc, not "crun or runc": crun fails on hosts whose cgroups are in hybrid mode (Debian 12's
    # default among them), and the CLI falls back to runc.
    have runc || printf 'runc\tthe OCI runtime for the RUN step examples/hello/build.ts has when run as root\n'
    have slirp4netns || printf 'slirp4netns\tthe user-mode network of the RUN step (a private network namespace per RUN)\n'
    have getfattr || printf 'attr\tgetfattr, which the RUN layer diff reads overlay markers and capabilities with\n'
  fi
  return 0
}

report() { # missing-lines
  local miss="$1" pkgs
  pkgs="$(printf '%s\n' "$miss" | cut -f1 | tr '\n' ' ')"
  {
    echo "demo: missing (nothing was built):"
    printf '%s\n' "$miss" | while IFS=$'\t' read -r pkg why; do echo "  $pkg: $why"; done
    echo "Install with (Debian/Ubuntu):"
    echo "  $(is_root || echo 'sudo ')apt-get update && $(is_root || echo 'sudo ')apt-get install -y ${pkgs% }"
    echo "then run 'npm run demo' again."
  } >&2
}

node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$node_major" -lt 20 ]; then
  log "needs Node.js >= 20 (found $(node --version 2>/dev/null || echo none)); Debian 12's nodejs is 18: install Node 20 from nodejs.org or NodeSource, then run 'npm run demo' again."
  exit 3
fi

miss="$(missing_packages)"
if [ -n "$miss" ]; then
  if [ "$CHECK_ONLY" = 1 ] || ! is_root || ! is_debian || ! command -v apt-get >/dev/null; then
    report "$miss"
    if [ "$CHECK_ONLY" = 0 ]; then
      if ! is_root; then log "(not installed automatically: not running as root)"
      else log "(not installed automatically: not a Debian system with apt-get)"; fi
    fi
    exit 3
  fi
  pkgs="$(printf '%s\n' "$miss" | cut -f1 | tr '\n' ' ')"
  log "installing: $pkgs"
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  # A bare machine has no package lists yet: that first failure is expected, and quiet.
  if ! apt-get install -y -q $pkgs >/dev/null 2>&1; then
    log "running apt-get update, then installing again"
    apt-get update -q >/dev/null
    # shellcheck disable=SC2086
    apt-get install -y -q $pkgs >/dev/null
  fi
  miss="$(missing_packages)"
  if [ -n "$miss" ]; then report "$miss"; log "still missing after apt-get install"; exit 1; fi
fi
if [ "$CHECK_ONLY" = 1 ]; then
  log "everything the demo needs is here$(is_root || echo ' (not root: the demo build is COPY-only)')"
  exit 0
fi

[ -d node_modules ] || npm ci --no-audit --no-fund

BUSYBOX="$(static_busybox)"
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/bin" "$ctx/rootfs/etc" "$ctx/rootfs/tmp" "$ctx/rootfs/root"
cp "$BUSYBOX" "$ctx/rootfs/bin/busybox"
for applet in $("$BUSYBOX" --list); do [ "$applet" = busybox ] || ln -sf busybox "$ctx/rootfs/bin/$applet"; done
chmod 1777 "$ctx/rootfs/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$ctx/rootfs/etc/passwd"
printf 'root:x:0:\n' > "$ctx/rootfs/etc/group"
cp -r examples/hello/app "$ctx/app"

mkdir -p out
node bin/imagesmith.js build examples/hello/build.ts --context "$ctx" -t imagesmith-demo:latest \
  -o type=oci,dest=out/hello.tar --progress plain
node bin/imagesmith.js inspect out/hello.tar
cat >&2 <<MSG

demo: wrote out/hello.tar. Load and run it with any of:
  podman load -i out/hello.tar && podman run --rm docker.io/library/imagesmith-demo:latest
  docker load -i out/hello.tar && docker run --rm imagesmith-demo:latest
  ctr images import out/hello.tar
  skopeo inspect oci-archive:out/hello.tar
MSG
