#!/usr/bin/env bash
# Provision the integration test bed: Debian packages for the real tools the
# tests check outputs with, and offline base images cached outside the work tree.
#
#   bash scripts/provision.sh               # packages + busybox + debian bases
#   bash scripts/provision.sh --no-debian   # skip the Debian base (or IMAGESMITH_TESTBED_DEBIAN=0)
#   bash scripts/provision.sh --check       # only report what is missing, change nothing
#
# Idempotent and fast when warm: packages are installed only if missing, each base
# is rebuilt only when its recipe key (recipe text + tool versions) changes.
# As root it also makes the rootless test users (plain accounts with a home):
#   imagesmith-rootless  subordinate ids 200000-265535 in /etc/subuid and /etc/subgid (exactly that range)
#   imagesmith-norange   no subordinate range at all (the single-id mapping case)
# Caches live in ${IMAGESMITH_TESTBED:-$HOME/.cache/imagesmith-testbed}:
#   busybox-oci/  busybox.tar  busybox-rootfs.tar  busybox.stamp
#   debian-oci/   debian.tar   debian-rootfs.tar   debian.stamp
#   busybox-arm64-oci/  busybox-arm64.tar  busybox-arm64-rootfs.tar  busybox-arm64.stamp
#     (Debian's busybox-static:arm64, config architecture arm64: the base of emulated RUN tests)
# As root it also mounts binfmt_misc and registers qemu-user-static's aarch64 handler
# (flags OPF: the F flag lets a container without qemu inside run arm64 programs).
# Registration lasts until reboot, so every run checks it again.
# A base is ready only when its .stamp exists: it is written last, after the
# artefacts were built in a temp dir and renamed into place.
set -eEuo pipefail
# Exit codes: 0 ready; 3 cannot provision on this machine (not root, not Debian, or
# --check found gaps); 1 anything else failed. Failing tools' own codes never leak out,
# so scripts/test.sh can tell "skip here" from "broken".
trap 'exit 1' ERR

TESTBED="${IMAGESMITH_TESTBED:-${HOME:-/root}/.cache/imagesmith-testbed}"
WANT_DEBIAN="${IMAGESMITH_TESTBED_DEBIAN:-1}"
CHECK_ONLY=0
for arg in "$@"; do
  case "$arg" in
    --debian) WANT_DEBIAN=1 ;;
    --no-debian) WANT_DEBIAN=0 ;;
    --check) CHECK_ONLY=1 ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "provision: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

# Fixed timestamps for the bases (a recent date: epoch 0 reads as "56 years ago").
BASE_CREATED="2025-01-01T00:00:00Z"
BASE_EPOCH=1735689600
BASE_PATH_ENV="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# package -> commands it must provide (command -v, absolute paths, or static:busybox).
PACKAGES=(runc crun skopeo umoci oci-image-tool docker-registry busybox-static mmdebstrap
          podman buildah docker.io pigz attr xz-utils bzip2 zstd uidmap apache2-utils slirp4netns
          qemu-user-static openssl)
declare -A PKG_CMDS=(
  [runc]="runc" [crun]="crun" [skopeo]="skopeo" [umoci]="umoci"
  [oci-image-tool]="oci-image-tool" [docker-registry]="docker-registry"
  [busybox-static]="static:busybox" [mmdebstrap]="mmdebstrap" [podman]="podman" [buildah]="buildah"
  [docker.io]="dockerd /usr/bin/docker containerd ctr" [pigz]="pigz" [attr]="getfattr setfattr"
  [xz-utils]="xz" [bzip2]="bzip2" [zstd]="zstd" [uidmap]="newuidmap newgidmap"
  [apache2-utils]="htpasswd" [slirp4netns]="slirp4netns"
  [qemu-user-static]="qemu-aarch64-static /usr/lib/binfmt.d/qemu-aarch64.conf"
  [openssl]="openssl"
)

log() { printf 'provision: %s\n' "$*" >&2; }
die() { printf 'provision: ERROR: %s\n' "$*" >&2; exit 1; }

# shellcheck source=lib/host.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/host.sh"

have_cmd() {
  case "$1" in
    static:busybox) static_busybox >/dev/null ;;
    /*.conf) [ -f "$1" ] ;;
    /*) [ -x "$1" ] ;;
    *) command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ] ;;
  esac
}

# Prints "package<TAB>missing commands" for every package whose commands are absent.
missing_tools() {
  local pkg cmd miss
  for pkg in "${PACKAGES[@]}"; do
    miss=""
    for cmd in ${PKG_CMDS[$pkg]}; do have_cmd "$cmd" || miss+="$cmd "; done
    [ -z "$miss" ] || printf '%s\t%s\n' "$pkg" "${miss% }"
  done
}

# --- bases -------------------------------------------------------------------

# Recipe keys: the text of the build function plus the versions of the tools
# that shape the output. A changed recipe gives a new key and the base is rebuilt.
tool_versions() { dpkg-query -W -f='${Package}=${Version}\n' "$@" 2>/dev/null || true; }
recipe_key() {
  local fn="$1"; shift
  { echo "recipe-v1 $BASE_CREATED $BASE_PATH_ENV"; declare -f "$fn" write_layout_and_archive; tool_versions "$@"; } \
    | sha256sum | cut -d' ' -f1
}

is_ready() { # name key
  [ -f "$TESTBED/$1.stamp" ] && [ "$(cat "$TESTBED/$1.stamp")" = "$2" ]
}

# Moves the artefacts of a finished build (in $2) into the cache, then writes the stamp.
publish() { # name builddir key artefact...
  local name="$1" build="$2" key="$3"; shift 3
  local a trash
  rm -f "$TESTBED/$name.stamp"
  trash="$(mktemp -d "$TESTBED/.trash.XXXXXX")"
  for a in "$@"; do
    [ -e "$TESTBED/$a" ] && mv "$TESTBED/$a" "$trash/"
    mv "$build/$a" "$TESTBED/$a"
  done
  rm -rf "$trash" "$build"
  printf '%s\n' "$key" >"$TESTBED/.$name.stamp.tmp"
  sync -f "$TESTBED" 2>/dev/null || true
  mv "$TESTBED/.$name.stamp.tmp" "$TESTBED/$name.stamp"
}

# Makes an OCI layout (tag latest) with one layer from an uncompressed rootfs tar,
# then an OCI archive of the same image. umoci raw add-layer takes the tar
# verbatim, so ownership (e.g. /home/app = 1000) and mtimes are exactly as packed.
write_layout_and_archive() { # rootfs.tar layoutdir archive cmd
  local rootfs_tar="$1" layout="$2" archive="$3" cmd="$4"
  umoci init --layout "$layout"
  umoci new --image "$layout:latest"
  umoci raw add-layer --image "$layout:latest" \
    --history.created "$BASE_CREATED" --history.created_by "imagesmith testbed: $(basename "$rootfs_tar")" \
    "$rootfs_tar"
  umoci config --image "$layout:latest" --created "$BASE_CREATED" \
    --os linux --architecture amd64 \
    --config.cmd "$cmd" --config.env "$BASE_PATH_ENV" \
    --history.created "$BASE_CREATED" --history.created_by "imagesmith testbed: config cmd=$cmd"
  umoci gc --layout "$layout"
  umoci stat --image "$layout:latest" >/dev/null
  skopeo copy --quiet "oci:$layout:latest" "oci-archive:$archive:latest"
}

build_busybox() { # builddir
  local b="$1" bb r
  bb="$(static_busybox)" || die "no static busybox (install busybox-static)"
  r="$b/rootfs"
  mkdir -p "$r/bin" "$r/etc" "$r/root" "$r/tmp" "$r/home/app"
  cp "$bb" "$r/bin/busybox"
  chmod 0755 "$r/bin/busybox"
  local applet
  while read -r applet; do
    [ -n "$applet" ] && [ "$applet" != busybox ] && ln -sf busybox "$r/bin/$applet"
  done < <("$bb" --list)
  cat >"$r/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
app:x:1000:1000::/home/app:/bin/sh
EOF
  cat >"$r/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
nobody:x:65534:
app:x:1000:
EOF
  chmod 0644 "$r/etc/passwd" "$r/etc/group"
  chmod 0755 "$r" "$r/bin" "$r/etc" "$r/home"
  chmod 0700 "$r/root"
  chmod 1777 "$r/tmp"
  chmod 0755 "$r/home/app"
  chown -R 0:0 "$r"
  chown 1000:1000 "$r/home/app"
  find "$r" -exec touch -h -d "@$BASE_EPOCH" {} +
  (cd "$r" && tar --sort=name --format=gnu --numeric-owner --mtime="@$BASE_EPOCH" \
     -cf "$b/busybox-rootfs.tar" bin etc home root tmp)
  rm -rf "$r"
  write_layout_and_archive "$b/busybox-rootfs.tar" "$b/busybox-oci" "$b/busybox.tar" sh
}

build_debian() { # builddir
  local b="$1"
  SOURCE_DATE_EPOCH="$BASE_EPOCH" mmdebstrap --quiet --variant=minbase --format=tar --skip=output/dev \
    bookworm "$b/debian-rootfs.tar" http://deb.debian.org/debian
  write_layout_and_archive "$b/debian-rootfs.tar" "$b/debian-oci" "$b/debian.tar" bash
}

ensure_base() { # name build_fn key artefacts...
  local name="$1" fn="$2" key="$3"; shift 3
  if is_ready "$name" "$key"; then
    log "$name base ready ($TESTBED)"
    return 0
  fi
  local build t0
  t0=$SECONDS
  build="$(mktemp -d "$TESTBED/.build-$name.XXXXXX")"
  log "building $name base in $build"
  "$fn" "$build"
  publish "$name" "$build" "$key" "$@"
  log "$name base built in $((SECONDS - t0)) s"
}

# --- arm64 emulation ----------------------------------------------------------

BINFMT=/proc/sys/fs/binfmt_misc
QEMU_AARCH64_CONF=/usr/lib/binfmt.d/qemu-aarch64.conf

# Prints what emulated (arm64) RUN steps need and this machine lacks (one line each).
emulation_gaps() {
  [ -f "$QEMU_AARCH64_CONF" ] || { echo "qemu-user-static ($QEMU_AARCH64_CONF; apt-get install qemu-user-static)"; return 0; }
  if ! grep -qs '^binfmt_misc ' /proc/mounts; then
    echo "binfmt_misc not mounted (mount -t binfmt_misc binfmt_misc $BINFMT)"
  elif [ ! -f "$BINFMT/qemu-aarch64" ]; then
    echo "qemu-aarch64 handler not registered (cat $QEMU_AARCH64_CONF > $BINFMT/register)"
  elif ! grep -qs '^flags: .*F' "$BINFMT/qemu-aarch64"; then
    echo "qemu-aarch64 handler lacks the F flag (re-register it from $QEMU_AARCH64_CONF)"
  elif [ "$(head -n1 "$BINFMT/qemu-aarch64")" != enabled ]; then
    echo "qemu-aarch64 handler disabled (echo 1 > $BINFMT/qemu-aarch64)"
  fi
}

# Mounts binfmt_misc and registers the aarch64 handler from qemu-user-static's own .conf.
# A handler of that name without the F flag (another tool's) is replaced: without F the
# kernel looks the interpreter up inside the container, which has no qemu.
# A kernel or container that refuses leaves a warning: the arm64 suites then skip, the rest runs.
ensure_emulation() {
  if ! grep -qs '^binfmt_misc ' /proc/mounts && ! mount -t binfmt_misc binfmt_misc "$BINFMT"; then
    log "WARNING: cannot mount binfmt_misc at $BINFMT: arm64 suites will skip"
    return 0
  fi
  if [ -f "$BINFMT/qemu-aarch64" ] && ! grep -qs '^flags: .*F' "$BINFMT/qemu-aarch64"; then
    echo -1 >"$BINFMT/qemu-aarch64"
    log "qemu-aarch64: removed a handler without the F flag"
  fi
  if [ ! -f "$BINFMT/qemu-aarch64" ]; then
    if ! cat "$QEMU_AARCH64_CONF" >"$BINFMT/register"; then
      log "WARNING: cannot register qemu-aarch64: arm64 suites will skip"
      return 0
    fi
    log "registered qemu-aarch64 from $QEMU_AARCH64_CONF"
  fi
  local gaps
  gaps="$(emulation_gaps)"
  if [ -n "$gaps" ]; then
    log "WARNING: arm64 emulation unavailable (${gaps//$'\n'/; }): arm64 suites will skip"
    return 0
  fi
  log "arm64 emulation ready (qemu-aarch64, flags $(sed -n 's/^flags: //p' "$BINFMT/qemu-aarch64"))"
}

# The version apt would download; part of the arm64 base's recipe key.
arm64_busybox_version() { apt-cache policy busybox-static:arm64 2>/dev/null | sed -n 's/^ *Candidate: //p'; }

# apt-get download needs arm64 among dpkg's architectures; added (with one apt-get update) once.
ensure_arm64_apt() {
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
    log "dpkg: added architecture arm64"
  fi
  local v
  v="$(arm64_busybox_version)"
  if [ -z "$v" ] || [ "$v" = "(none)" ]; then apt-get update -q >/dev/null; fi
}

# The same rootfs as build_busybox, from Debian's arm64 busybox-static, config architecture arm64.
# A function of its own rather than parameters on build_busybox / write_layout_and_archive:
# their text is in the amd64 bases' recipe keys, and changing it would rebuild those bases.
build_busybox_arm64() { # builddir
  local b="$1" r deb applet layout
  r="$b/rootfs"
  layout="$b/busybox-arm64-oci"
  (cd "$b" && apt-get download -q busybox-static:arm64 >/dev/null 2>&1) || die "apt-get download busybox-static:arm64 failed"
  deb="$(ls "$b"/busybox-static_*_arm64.deb)"
  mkdir -p "$b/deb" "$r/bin" "$r/etc" "$r/root" "$r/tmp" "$r/home/app"
  dpkg-deb -x "$deb" "$b/deb"
  cp "$b/deb/bin/busybox" "$r/bin/busybox"
  rm -rf "$b/deb" "$deb"
  chmod 0755 "$r/bin/busybox"
  # qemu-aarch64-static runs it directly: listing the applets needs no binfmt handler.
  while read -r applet; do
    [ -n "$applet" ] && [ "$applet" != busybox ] && ln -sf busybox "$r/bin/$applet"
  done < <(qemu-aarch64-static "$r/bin/busybox" --list)
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' \
    'app:x:1000:1000::/home/app:/bin/sh' >"$r/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' 'nobody:x:65534:' 'app:x:1000:' >"$r/etc/group"
  chmod 0644 "$r/etc/passwd" "$r/etc/group"
  chmod 0755 "$r" "$r/bin" "$r/etc" "$r/home"
  chmod 0700 "$r/root"
  chmod 1777 "$r/tmp"
  chmod 0755 "$r/home/app"
  chown -R 0:0 "$r"
  chown 1000:1000 "$r/home/app"
  find "$r" -exec touch -h -d "@$BASE_EPOCH" {} +
  (cd "$r" && tar --sort=name --format=gnu --numeric-owner --mtime="@$BASE_EPOCH" \
     -cf "$b/busybox-arm64-rootfs.tar" bin etc home root tmp)
  rm -rf "$r"
  umoci init --layout "$layout"
  umoci new --image "$layout:latest"
  umoci raw add-layer --image "$layout:latest" \
    --history.created "$BASE_CREATED" --history.created_by "imagesmith testbed: busybox-arm64-rootfs.tar" \
    "$b/busybox-arm64-rootfs.tar"
  umoci config --image "$layout:latest" --created "$BASE_CREATED" \
    --os linux --architecture arm64 \
    --config.cmd sh --config.env "$BASE_PATH_ENV" \
    --history.created "$BASE_CREATED" --history.created_by "imagesmith testbed: config cmd=sh"
  umoci gc --layout "$layout"
  umoci stat --image "$layout:latest" >/dev/null
  skopeo copy --quiet "oci:$layout:latest" "oci-archive:$b/busybox-arm64.tar:latest"
}

# --- rootless test users ------------------------------------------------------

ROOTLESS_USER=imagesmith-rootless
NORANGE_USER=imagesmith-norange
ROOTLESS_SUBIDS=200000-265535

# "first-last" ranges of a user in /etc/subuid or /etc/subgid, one per line.
sub_ranges() { # file user
  [ -f "$1" ] || return 0
  awk -F: -v u="$2" '$1 == u { printf "%d-%d\n", $2, $2 + $3 - 1 }' "$1"
}

# The user, with a home, and exactly the wanted subordinate range ('' = none).
# useradd would hand out a range of its own (SUB_UID_COUNT in login.defs): turn that off
# and set ours, dropping any other range an earlier hand-made setup left.
ensure_user() { # name range
  local name="$1" want="$2" r kind
  if ! getent passwd "$name" >/dev/null; then
    useradd --create-home --shell /bin/sh -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$name"
    log "created user $name"
  fi
  touch /etc/subuid /etc/subgid
  for kind in uid gid; do
    for r in $(sub_ranges "/etc/sub$kind" "$name"); do
      if [ "$r" != "$want" ]; then
        usermod "--del-sub${kind}s" "$r" "$name"
        log "$name: dropped sub${kind} range $r"
      fi
    done
    if [ -n "$want" ] && ! sub_ranges "/etc/sub$kind" "$name" | grep -qx "$want"; then
      usermod "--add-sub${kind}s" "$want" "$name"
      log "$name: sub${kind} range $want"
    fi
  done
}

# Prints what the rootless tests need and this machine lacks (one line each).
rootless_gaps() {
  local n
  getent passwd "$ROOTLESS_USER" >/dev/null || echo "user $ROOTLESS_USER"
  getent passwd "$NORANGE_USER" >/dev/null || echo "user $NORANGE_USER"
  [ "$(sub_ranges /etc/subuid "$ROOTLESS_USER")" = "$ROOTLESS_SUBIDS" ] || echo "/etc/subuid: $ROOTLESS_USER $ROOTLESS_SUBIDS"
  [ "$(sub_ranges /etc/subgid "$ROOTLESS_USER")" = "$ROOTLESS_SUBIDS" ] || echo "/etc/subgid: $ROOTLESS_USER $ROOTLESS_SUBIDS"
  [ "$(stat -c %a /dev/net/tun 2>/dev/null)" = 666 ] || echo "/dev/net/tun mode 0666 (the rootless user-mode network opens it)"
  n="$(cat /proc/sys/user/max_user_namespaces 2>/dev/null || echo 0)"
  [ "$n" -gt 0 ] || echo "user namespaces (sysctl -w user.max_user_namespaces=15000)"
  if [ -r /proc/sys/kernel/unprivileged_userns_clone ] && [ "$(cat /proc/sys/kernel/unprivileged_userns_clone)" = 0 ]; then
    echo "unprivileged user namespaces (sysctl -w kernel.unprivileged_userns_clone=1)"
  fi
}

ensure_rootless_users() {
  ensure_user "$ROOTLESS_USER" "$ROOTLESS_SUBIDS"
  ensure_user "$NORANGE_USER" ""
  # slirp4netns opens /dev/net/tun as the plain user: Debian's udev makes it 0666, a host without udev leaves 0600.
  if [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then chmod 0666 /dev/net/tun; log "/dev/net/tun: mode 0666 (as Debian's udev sets it)"; fi
  local gaps
  gaps="$(rootless_gaps)"
  [ -z "$gaps" ] || die "rootless test bed incomplete: ${gaps//$'\n'/; }"
  log "rootless test users ready ($ROOTLESS_USER: sub ids $ROOTLESS_SUBIDS; $NORANGE_USER: none)"
}

# --- main --------------------------------------------------------------------

report_missing() {
  local miss="$1"
  {
    echo "provision: the integration test bed is incomplete on this machine."
    if [ -n "$miss" ]; then
      echo "Missing tools (package: commands):"
      printf '%s\n' "$miss" | while IFS=$'\t' read -r pkg cmds; do echo "  $pkg: $cmds"; done
      echo "Install them with:"
      echo "  apt-get update && apt-get install -y $(printf '%s\n' "$miss" | cut -f1 | tr '\n' ' ')"
    fi
  } >&2
}

main() {
  local miss
  miss="$(missing_tools)"

  if ! is_root || ! is_debian || [ "$CHECK_ONLY" = 1 ]; then
    local why=""
    is_root || why="not running as root (uid $(id -u))"
    is_debian || why="${why:+$why; }not a Debian system"
    local not_ready=""
    [ -f "$TESTBED/busybox.stamp" ] || not_ready+="busybox "
    [ "$WANT_DEBIAN" = 0 ] || [ -f "$TESTBED/debian.stamp" ] || not_ready+="debian "
    [ -f "$TESTBED/busybox-arm64.stamp" ] || not_ready+="busybox-arm64 "
    local emulation
    emulation="$(emulation_gaps)"
    local rootless
    rootless="$(rootless_gaps)"
    # Only root can make the test users; elsewhere their absence just leaves the rootless suites out.
    if [ -n "$rootless" ] && ! is_root; then
      log "rootless test users absent (${rootless//$'\n'/; }): rootless suites will skip"
      rootless=""
    fi
    if [ -z "$miss" ] && [ -z "$not_ready" ] && [ -z "$rootless" ] && [ -z "$emulation" ]; then
      log "all tools present and bases cached in $TESTBED${why:+ ($why: nothing installed or rebuilt)}"
      return 0
    fi
    report_missing "$miss"
    [ -z "$not_ready" ] || echo "provision: base images not built yet in $TESTBED: $not_ready" >&2
    [ -z "$rootless" ] || echo "provision: rootless test bed lacks: ${rootless//$'\n'/; }" >&2
    [ -z "$emulation" ] || echo "provision: arm64 emulation lacks: ${emulation//$'\n'/; } (arm64 suites will skip)" >&2
    if [ "$CHECK_ONLY" = 1 ] && is_root && is_debian; then
      echo "provision: run 'bash scripts/provision.sh' to install and build them." >&2
    else
      echo "provision: cannot provision: ${why}. Run 'bash scripts/provision.sh' as root on Debian 12 (bookworm)," >&2
      echo "provision: or install the packages above yourself and run it as root once to build the bases." >&2
    fi
    exit 3
  fi

  if [ -n "$miss" ]; then
    local pkgs
    pkgs="$(printf '%s\n' "$miss" | cut -f1 | tr '\n' ' ')"
    log "installing: $pkgs"
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    if ! apt-get install -y -q $pkgs >/dev/null; then
      log "apt-get install failed; running apt-get update and retrying"
      apt-get update -q >/dev/null
      # shellcheck disable=SC2086
      apt-get install -y -q $pkgs >/dev/null
    fi
    miss="$(missing_tools)"
    if [ -n "$miss" ]; then report_missing "$miss"; die "tools still missing after apt-get install"; fi
  fi

  mkdir -p "$TESTBED"
  exec 9>"$TESTBED/.lock"
  flock 9
  # Leftovers of killed runs (they never had a stamp, so nothing trusted them).
  rm -rf "$TESTBED"/.build-* "$TESTBED"/.trash.* "$TESTBED"/.*.stamp.tmp

  ensure_rootless_users

  local bbkey
  bbkey="$(recipe_key build_busybox busybox-static umoci skopeo tar)"
  ensure_base busybox build_busybox "$bbkey" busybox-rootfs.tar busybox-oci busybox.tar
  if [ "$WANT_DEBIAN" != 0 ]; then
    local debkey
    debkey="$(recipe_key build_debian mmdebstrap umoci skopeo)"
    ensure_base debian build_debian "$debkey" debian-rootfs.tar debian-oci debian.tar
  fi

  ensure_emulation
  ensure_arm64_apt
  local armkey
  armkey="$({ recipe_key build_busybox_arm64 umoci skopeo tar qemu-user-static; echo "busybox-static:arm64=$(arm64_busybox_version)"; } | sha256sum | cut -d' ' -f1)"
  ensure_base busybox-arm64 build_busybox_arm64 "$armkey" busybox-arm64-rootfs.tar busybox-arm64-oci busybox-arm64.tar
}

main
