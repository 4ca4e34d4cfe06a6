#!/usr/bin/env bash
# The main job (`npm run demo`): install, build the package, build a demo image offline into
# out/hello.tar, and print how to load it. Works on a fresh machine; needs busybox-static
# (installed here when running as root on Debian).
set -euo pipefail
cd "$(dirname "$0")/.."

[ -d node_modules ] || npm ci --no-audit --no-fund


BUSYBOX=/usr/bin/busybox
# Debian's busybox-static provides a static /usr/bin/busybox ("not a dynamic executable").
if ! { [ -x "$BUSYBOX" ] && ldd "$BUSYBOX" 2>&1 | grep -q 'not a dynamic'; }; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "demo: installing busybox-static" >&2
    (apt-get install -y -qq busybox-static >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq busybox-static; }) >&2
  else
    echo "demo: needs a static busybox at $BUSYBOX: apt-get install busybox-static (as root)" >&2
    exit 1
  fi
fi

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
