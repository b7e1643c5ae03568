"""The sample project's and the runtime's own Django test suites, from pytest.

sample_project/run-tests.sh prepares .cache/venv-sample (PyPI on the
controller) and runs both suites (SQLite, local-memory cache, in-memory
channel layer: no services needed). This wrapper lets `.venv/bin/pytest
tests/unit` cover them too.
"""

import pathlib
import subprocess

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_sample_project_and_runtime_suites():
    proc = subprocess.run(
        [str(REPO / "sample_project" / "run-tests.sh")],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-6000:]
    # Both suites ran and passed (Django prints "Ran N tests" / "OK" per suite).
    assert proc.stdout.count("\nOK") >= 2, proc.stdout[-3000:]
