#!/usr/bin/env bash
# Entry of `make bench` (which runs bootstrap and image first).
#   bench/run.sh              every part, from empty hosts; destroys the bench sandbox at the end
#   bench/run.sh sessions ... only those parts (deploy|sessions|redis|rolling); keeps the sandbox
# Always on its own sandbox (containers bundle-bench-*, load balancer on
# 127.0.0.1:18090), never the `make deploy` or molecule ones.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

export BUNDLE_SANDBOX_PREFIX=${BENCH_SANDBOX_PREFIX:-bundle-bench}
export BUNDLE_LB_PORT=${BENCH_LB_PORT:-18090}
export ANSIBLE_CONFIG=$REPO/ansible.cfg
export PATH=$REPO/.venv/bin:$PATH
PLOT_VENV=$REPO/.cache/venv-bench

log() { printf '[bench] %s\n' "$*" >&2; }

case "$BUNDLE_SANDBOX_PREFIX" in
  bundle-sandbox|bundle-molecule|bundle-se) log "refusing to benchmark on $BUNDLE_SANDBOX_PREFIX"; exit 2 ;;
esac

# Tools: docker engine, wrk (HTTP load client), plotting venv (pinned).
scripts/ensure-docker.sh
if ! command -v wrk >/dev/null 2>&1; then
  log "installing wrk with apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
fi
if [ ! -f "$PLOT_VENV/.stamp" ] || [ bench/requirements.txt -nt "$PLOT_VENV/.stamp" ]; then
  log "plotting venv $PLOT_VENV"
  test -x "$PLOT_VENV/bin/python" || python3 -m venv "$PLOT_VENV"
  "$PLOT_VENV/bin/pip" install -q --disable-pip-version-check -r bench/requirements.txt
  touch "$PLOT_VENV/.stamp"
fi

destroy() {
  log "destroying the bench sandbox $BUNDLE_SANDBOX_PREFIX"
  ansible-playbook -i inventories/sandbox playbooks/sandbox_destroy.yml >bench/results/tmp/destroy.log 2>&1 \
    || log "sandbox_destroy.yml failed (see bench/results/tmp/destroy.log)"
}

mkdir -p bench/results/tmp
started=$(date +%s)
rc=0
if [ $# -eq 0 ]; then
  rm -f bench/results/errors.json bench/results/timings.json
  trap destroy EXIT
  .venv/bin/python bench/run.py || rc=$?
else
  .venv/bin/python bench/run.py "$@" || rc=$?
fi
echo "$(( $(date +%s) - started ))" >bench/results/tmp/last-run-seconds
"$PLOT_VENV/bin/python" bench/plot.py || rc=1
.venv/bin/python bench/report.py || rc=1
log "results in bench/results/ (summary.md); $(( $(date +%s) - started )) s"
exit $rc
