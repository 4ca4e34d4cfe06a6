# Host checks shared by the demo (scripts/demo.sh) and the test bed (scripts/provision.sh).
# Sourced, not run.

is_root() { [ "$(id -u)" = 0 ]; }

is_debian() {
  [ -r /etc/os-release ] || return 1
  local id like
  id="$(. /etc/os-release && echo "${ID:-}")"
  like="$(. /etc/os-release && echo "${ID_LIKE:-}")"
  [ "$id" = debian ] || [[ " $like " == *" debian "* ]]
}

# busybox must be the static build: it runs inside an image without a libc.
# (ldd exits non-zero on a static binary.)
static_busybox() {
  local bb
  for bb in /usr/bin/busybox /bin/busybox; do
    if [ -f "$bb" ] && [ -x "$bb" ] && ! ldd "$bb" >/dev/null 2>&1; then echo "$bb"; return 0; fi
  done
  return 1
}
