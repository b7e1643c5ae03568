"""Release source directories for the rolling migration tests.

``build_release("r2", tmp_path)`` copies ``sample_project/`` and lays the
overlays of ``tests/fixtures/releases/`` over it (r3 = r2 + r3), then sets the
project version from the last overlay's ``VERSION`` file. The result is passed
to the playbooks as ``-e django_project_source=<dir>``; the release id the role
computes depends only on the file contents, so the same fixture always gives
the same release id.

``current_release_args(tmp_path)`` gives the ``-e`` arguments that redeploy
the release app1 runs now, for tests that change settings, not code.
"""

import pathlib
import re
import shutil

import sandbox

REPO = pathlib.Path(__file__).resolve().parents[3]
SAMPLE = REPO / "sample_project"
FIXTURES = REPO / "tests" / "fixtures" / "releases"
CHAINS = {"r2": ["r2"], "r3": ["r2", "r3"], "r4": ["r2", "r4"]}
_SKIP = {".venv", "__pycache__", "build", "dist", ".pytest_cache"}
_META = {"VERSION"}
_VERSION = """
import json, importlib.metadata
print("RELEASES_VERSION " + json.dumps(importlib.metadata.version("bundle-sample")))
"""


def _ignore(directory, names):
    return [n for n in names if n in _SKIP or n.endswith((".egg-info", ".pyc", ".pyo")) or n.endswith(".sqlite3")]


def _overlay(src, dest):
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if path.is_dir() or rel.as_posix() in _META or any(p in _SKIP for p in rel.parts):
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def release_version(name):
    return (FIXTURES / CHAINS[name][-1] / "VERSION").read_text().strip()


def build_release(name, tmp_path):
    """Build the source tree of release fixture ``name`` under ``tmp_path``; return its path."""
    if name not in CHAINS:
        raise ValueError(f"unknown release fixture {name!r} (known: {', '.join(CHAINS)})")
    dest = pathlib.Path(tmp_path) / f"release-{name}"
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(SAMPLE, dest, ignore=_ignore)
    for overlay in CHAINS[name]:
        _overlay(FIXTURES / overlay, dest)
    pyproject = dest / "pyproject.toml"
    text, count = re.subn(
        r'(?m)^version\s*=\s*"[^"]*"', f'version = "{release_version(name)}"', pyproject.read_text(), count=1
    )
    if count != 1:
        raise AssertionError(f"no [project] version line in {pyproject}")
    pyproject.write_text(text)
    return dest


def deployed_version(app_host="app1"):
    """Version of the ``bundle-sample`` distribution in the release ``app_host`` runs."""
    return sandbox.django_shell(_VERSION, "RELEASES_VERSION", host=app_host)


def current_release_args(tmp_path):
    """``-e django_project_source=...`` that redeploys the current release (none for the sample)."""
    version = deployed_version()
    sample = re.search(r'(?m)^version\s*=\s*"([^"]+)"', (SAMPLE / "pyproject.toml").read_text()).group(1)
    if version == sample:
        return []
    for name in CHAINS:
        if release_version(name) == version:
            return ["-e", f"django_project_source={build_release(name, tmp_path)}"]
    raise AssertionError(f"deployed bundle-sample {version} is neither the sample ({sample}) nor a release fixture")
