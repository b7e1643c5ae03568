#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine: install docker.io with apt
# when the engine is missing (Debian/Ubuntu), start dockerd by hand when no
# daemon answers (no systemd on CI machines), then wait for the socket.
# Idempotent and quick when everything is already there.
set -euo pipefail

log() { printf '[ensure-docker] %s\n' "$*" >&2; }

if docker info >/dev/null 2>&1; then
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    log "installing docker.io with apt"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq docker.io >/dev/null
  else
    log "no dockerd and no apt-get: install a Docker engine first" ; exit 1
  fi
fi

if ! docker info >/dev/null 2>&1; then
  if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    log "starting docker with systemd"
    systemctl start docker || true
  fi
fi

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd in the background (log: /var/log/dockerd-bundle.log)"
  # setsid: the daemon must outlive the make target that started it
  setsid nohup dockerd >>/var/log/dockerd-bundle.log 2>&1 < /dev/null &
fi

for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    log "docker engine is up"
    exit 0
  fi
  sleep 1
done
log "dockerd did not answer within 60 s; see /var/log/dockerd-bundle.log"
tail -n 20 /var/log/dockerd-bundle.log >&2 || true
exit 1
