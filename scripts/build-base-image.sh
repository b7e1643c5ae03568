#!/usr/bin/env bash
# Build the systemd test-host image (Debian 12) without any registry:
# debootstrap from the Debian mirror, then `docker import`.
# Skipped when the image already exists. A user with a registry can instead set
# BUNDLE_BASE_IMAGE to a stock systemd image (it then must already be present
# or pullable; this script does not build it unless it is the default name).
set -euo pipefail

IMAGE="${BUNDLE_BASE_IMAGE:-bundle-debian12-systemd:latest}"
MIRROR="${BUNDLE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE="${BUNDLE_DEBIAN_SUITE:-bookworm}"
log() { printf '[base-image] %s\n' "$*" >&2; }

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  exit 0
fi
if [ "${IMAGE%%:*}" != "bundle-debian12-systemd" ]; then
  log "image $IMAGE not present: pulling it (BUNDLE_BASE_IMAGE is not the locally built one)"
  docker pull "$IMAGE"
  exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  log "installing debootstrap with apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null
fi

root=$(mktemp -d /var/tmp/bundle-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
log "debootstrap $SUITE from $MIRROR into $root (takes a few minutes)"
debootstrap --variant=minbase \
  --include=systemd,systemd-sysv,dbus,python3,python3-apt,iproute2,procps,ca-certificates,netbase,less,tzdata,locales \
  "$SUITE" "$root" "$MIRROR" >/tmp/bundle-debootstrap.log 2>&1 || {
    tail -n 30 /tmp/bundle-debootstrap.log >&2; exit 1; }

# Container-only adjustments: they live in the test image, never in the roles.
mkdir -p "$root/etc/systemd/system/service.d"
cat > "$root/etc/systemd/system/service.d/10-container.conf" <<'CONF'
# Test image only: user namespaces cannot be set up inside this container, so
# units with PrivateUsers= (Debian's redis-server@) would fail. Real hosts keep it.
[Service]
PrivateUsers=no
CONF
# Units that make no sense without real hardware/consoles.
for unit in getty.target systemd-udevd.service systemd-udevd-control.socket \
            systemd-udevd-kernel.socket sys-kernel-config.mount \
            systemd-modules-load.service systemd-firstboot.service \
            console-getty.service; do
  ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
echo 'deb http://deb.debian.org/debian bookworm main' > "$root/etc/apt/sources.list"
echo 'deb http://deb.debian.org/debian bookworm-updates main' >> "$root/etc/apt/sources.list"
echo 'deb http://deb.debian.org/debian-security bookworm-security main' >> "$root/etc/apt/sources.list"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
# An empty list dir must look stale, so that `apt update_cache` with
# cache_valid_time refreshes it on first use.
touch -d @0 "$root/var/lib/apt/lists"
: > "$root/etc/machine-id"

log "importing as $IMAGE"
tar -C "$root" -c . | docker import \
  --change 'CMD ["/lib/systemd/systemd"]' \
  --change 'ENV container=docker' \
  - "$IMAGE" >/dev/null
log "built $IMAGE"
