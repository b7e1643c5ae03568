#!/usr/bin/env bash
# Run the sample project's and the runtime's own test suites on the controller.
#
# Creates (or reuses) the virtualenv .cache/venv-sample at the repository root
# from sample_project/requirements-test.txt (requirements.txt + test-only
# tools) plus runtime/ and sample_project/
# (editable installs); it is rebuilt when those inputs change.
#
#   sample_project/run-tests.sh            # install if needed, run all tests
#   sample_project/run-tests.sh --venv-only  # only make sure the venv is ready
#   PYTHON=python3.11 sample_project/run-tests.sh
#
# Exits non-zero when any test fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
venv="$repo/.cache/venv-sample"
python="${PYTHON:-python3}"

stamp_of_inputs() {
    cat "$here/requirements.txt" "$here/requirements-test.txt" "$here/pyproject.toml" "$repo/runtime/pyproject.toml" | sha256sum | cut -d' ' -f1
}

ensure_venv() {
    local want have=""
    want="$(stamp_of_inputs)"
    if [[ -x "$venv/bin/python" && -f "$venv/.bundle-stamp" ]]; then
        have="$(cat "$venv/.bundle-stamp")"
    fi
    if [[ "$want" == "$have" ]]; then
        return 0
    fi
    echo "run-tests: preparing $venv" >&2
    [[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r "$here/requirements-test.txt" -e "$repo/runtime" -e "$here"
    echo "$want" > "$venv/.bundle-stamp"
}

ensure_venv
if [[ "${1:-}" == "--venv-only" ]]; then
    exit 0
fi

status=0
echo "== sample project tests" >&2
(cd "$here" && BUNDLE_SAMPLE_TEST=1 DJANGO_SETTINGS_MODULE=bundle_sample.settings \
    "$venv/bin/python" -m django test --noinput -v 2 tests) || status=1
echo "== runtime tests" >&2
(cd "$repo/runtime" && DJANGO_SETTINGS_MODULE=tests.settings \
    "$venv/bin/python" -m django test --noinput -v 2 tests) || status=1
exit "$status"
