"""The sandbox containers as the tests and the bench reach them: ``docker exec``.

The container of inventory host ``app1`` is ``<BUNDLE_SANDBOX_PREFIX>-app1``
(playbooks/sandbox_create.yml). Secrets given in ``env`` reach the container
through the environment of ``docker exec -e NAME``, never its argv.
"""

import json
import os
import re
import subprocess
import time

PREFIX = os.environ.get("BUNDLE_SANDBOX_PREFIX", "bundle-sandbox")


def container(host, prefix=None):
    return f"{prefix or PREFIX}-{host}"


def docker_exec(host, argv, env=None, user=None, stdin=None, timeout=120, prefix=None):
    """Run ``argv`` in the container of ``host``; the CompletedProcess (text, never raises on rc)."""
    penv = dict(os.environ)
    cmd = ["docker", "exec"] + (["-i"] if stdin is not None else [])
    for name, value in (env or {}).items():
        penv[name] = value
        cmd += ["-e", name]
    if user is not None:
        cmd += ["-u", user, "-w", "/tmp"]
    cmd += [container(host, prefix), *argv]
    return subprocess.run(cmd, input=stdin, env=penv, capture_output=True, text=True, timeout=timeout,
                          check=False, **({} if stdin is not None else {"stdin": subprocess.DEVNULL}))


def django_shell(code, marker, host="app1", env=None, timeout=120, prefix=None):
    """Run ``django-manage shell -c code`` on ``host``; return the JSON the code printed as ``<marker> <json>``.

    Raises AssertionError (with the output) when the command fails or prints no such line.
    """
    proc = docker_exec(host, ["django-manage", "shell", "-c", code], env=env, timeout=timeout, prefix=prefix)
    match = re.search(rf"^{re.escape(marker)} (.*)$", proc.stdout, re.M)
    if proc.returncode != 0 or not match:
        raise AssertionError(f"django-manage shell on {container(host, prefix)} (rc {proc.returncode}, "
                             f"no {marker} line):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return json.loads(match.group(1))


def wait_until(predicate, timeout, message, interval=0.5):
    """Call ``predicate`` every ``interval`` seconds until it is true; AssertionError(message) after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(message)
