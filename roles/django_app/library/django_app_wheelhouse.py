#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Controller-side module of roles/django_app: release id and wheelhouse."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: django_app_wheelhouse
short_description: Compute a deterministic release id and build its wheelhouse on the controller
description:
  - Hashes the project source (a directory or a wheel), the runtime source and the
    requirements file into a release id C(<project version>-<sha256[:10]>).
  - Builds C(<cache_dir>/<release_id>.tar) once with C(pip wheel) (a wheelhouse plus
    an C(install.txt) that pins every wheel in it); later runs reuse it.
  - Runs with the controller's Python; the interpreter version and machine are
    returned so that the caller can compare them with the target hosts.
options:
  project_source: {description: Project source directory (with pyproject.toml) or a wheel file., type: path, required: true}
  runtime_source: {description: Source directory of the runtime support package., type: path, required: true}
  requirements: {description: Pinned requirements file (empty for none)., type: str, default: ""}
  cache_dir: {description: Directory that holds the built wheelhouses., type: path, required: true}
  release_id: {description: Use this release id instead of computing one., type: str, default: ""}
  build: {description: Build the wheelhouse when it is missing., type: bool, default: true}
author: django-deploy-bundle
"""

RETURN = r"""
release_id: {description: The release id., type: str, returned: always}
project_version: {description: Version of the project., type: str, returned: always}
archive: {description: Path of the wheelhouse tarball on the controller., type: str, returned: always}
python_version: {description: Controller python major.minor., type: str, returned: always}
machine: {description: Controller machine (platform.machine())., type: str, returned: always}
"""

import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile

from ansible.module_utils.basic import AnsibleModule

SKIP_DIRS = {"__pycache__", ".git", "build", "dist", ".pytest_cache", ".tox", ".venv", "node_modules"}


def _tree_files(root):
    """Sorted relative paths of the files that define a source tree."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        for name in filenames:
            if name.endswith((".pyc", ".pyo")):
                continue
            found.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(found)


def _ignore(directory, names):
    """shutil.copytree ignore callback: the same files _tree_files skips."""
    return [n for n in names
            if n in SKIP_DIRS or n.endswith((".egg-info", ".pyc", ".pyo"))]


def _hash_path(digest, label, path):
    digest.update(("<%s>" % label).encode())
    if os.path.isdir(path):
        for rel in _tree_files(path):
            digest.update(rel.encode() + b"\0")
            with open(os.path.join(path, rel), "rb") as handle:
                digest.update(hashlib.sha256(handle.read()).digest())
    else:
        with open(path, "rb") as handle:
            digest.update(hashlib.sha256(handle.read()).digest())


def _project_version(source):
    if os.path.isfile(source) and source.endswith(".whl"):
        parts = os.path.basename(source).split("-")
        return parts[1] if len(parts) > 1 else "0"
    pyproject = os.path.join(source, "pyproject.toml")
    if os.path.exists(pyproject):
        try:
            import tomllib  # python >= 3.11
        except ImportError:  # pragma: no cover
            tomllib = None
        if tomllib is not None:
            with open(pyproject, "rb") as handle:
                data = tomllib.load(handle)
            version = data.get("project", {}).get("version")
            if version:
                return str(version)
    return "0"


def _wheel_pin(filename):
    """'Django-5.2.1-py3-none-any.whl' -> 'django==5.2.1'."""
    with zipfile.ZipFile(filename) as wheel:
        meta = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")][0]
        text = wheel.read(meta).decode("utf-8", "replace")
    name = re.search(r"^Name: (.+)$", text, re.M).group(1).strip()
    version = re.search(r"^Version: (.+)$", text, re.M).group(1).strip()
    return "%s==%s" % (name, version)


def _build(module, params, archive):
    workdir = tempfile.mkdtemp(prefix="wheelhouse-", dir=params["cache_dir"])
    try:
        wheels = os.path.join(workdir, "wheelhouse")
        os.makedirs(wheels)
        # Build from clean copies: pip builds local directories in place and
        # would leave build/ and *.egg-info behind in the sources.
        sources = []
        for label in ("project_source", "runtime_source"):
            src = params[label]
            if os.path.isdir(src):
                copy = os.path.join(workdir, label)
                shutil.copytree(src, copy, ignore=_ignore)
                src = copy
            sources.append(src)
        cmd = [sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check",
               "--wheel-dir", wheels] + sources
        if params["requirements"]:
            cmd += ["-r", params["requirements"]]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
        if proc.returncode != 0:
            module.fail_json(msg="pip wheel failed (controller)", cmd=cmd, output=proc.stdout[-8000:])
        pins = sorted(_wheel_pin(os.path.join(wheels, f)) for f in os.listdir(wheels) if f.endswith(".whl"))
        with open(os.path.join(wheels, "install.txt"), "w", encoding="utf-8") as handle:
            handle.write("\n".join(pins) + "\n")
        partial = archive + ".partial"
        with tarfile.open(partial, "w") as tar:
            tar.add(wheels, arcname="wheelhouse")
        os.replace(partial, archive)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project_source=dict(type="path", required=True),
            runtime_source=dict(type="path", required=True),
            requirements=dict(type="str", default=""),
            cache_dir=dict(type="path", required=True),
            release_id=dict(type="str", default=""),
            build=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    for key in ("project_source", "runtime_source", "requirements"):
        if params[key] and not os.path.exists(params[key]):
            module.fail_json(msg="%s does not exist on the controller: %s" % (key, params[key]))

    python_version = "%d.%d" % sys.version_info[:2]
    version = _project_version(params["project_source"])
    digest = hashlib.sha256(("python%s\0" % python_version).encode())
    _hash_path(digest, "project", params["project_source"])
    _hash_path(digest, "runtime", params["runtime_source"])
    if params["requirements"]:
        _hash_path(digest, "requirements", params["requirements"])
    release_id = params["release_id"] or "%s-%s" % (version, digest.hexdigest()[:10])
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$", release_id):
        module.fail_json(msg="release id %r is not a safe directory name" % release_id)

    archive = os.path.join(params["cache_dir"], release_id + ".tar")
    changed = False
    if params["build"] and not os.path.exists(archive):
        changed = True
        if not module.check_mode:
            os.makedirs(params["cache_dir"], exist_ok=True)
            _build(module, params, archive)
    module.exit_json(changed=changed, release_id=release_id, project_version=version, archive=archive,
                     python_version=python_version, machine=platform.machine())


if __name__ == "__main__":
    main()
