"""Shared fixtures for the testinfra suites of the sandbox topology.

Hosts are named by their inventory name (``lb1``, ``app1``, ``redis1``...);
the container behind each is ``<BUNDLE_SANDBOX_PREFIX>-<name>`` as created by
playbooks/sandbox_create.yml from inventories/sandbox/hosts.yml.
"""

import json
import os
import pathlib
import subprocess

import pytest
import testinfra

import sandbox

REPO = pathlib.Path(__file__).resolve().parents[3]
INVENTORY = REPO / "inventories" / "sandbox"
PREFIX = sandbox.PREFIX
LB_PORT = int(os.environ.get("BUNDLE_LB_PORT", "8080"))
VENV_BIN = REPO / ".venv" / "bin"
#: Every secret of the sandbox (vault_* variables): none of them may show in
#: playbook output or in a world-readable file.
SECRET_VARS = (
    "vault_redis_admin_password", "vault_redis_app_password", "vault_postgresql_app_password",
    "vault_django_secret_key", "vault_django_demo_superuser_password",
)


def _ansible_env():
    # Same behaviour inside molecule (which exports its own ANSIBLE_* settings,
    # colours included) and outside: only the repository's ansible.cfg applies.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["ANSIBLE_NOCOLOR"] = "1"
    env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    env["BUNDLE_SANDBOX_PREFIX"] = PREFIX
    env["BUNDLE_LB_PORT"] = str(LB_PORT)
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="session")
def repo():
    return REPO


@pytest.fixture(scope="session")
def lb_url():
    """Base URL of the sandbox load balancer, published on 127.0.0.1."""
    return f"http://127.0.0.1:{LB_PORT}"


@pytest.fixture(scope="session")
def host_of():
    """host_of('redis1') -> a testinfra host for that inventory host."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = testinfra.get_host(f"docker://{PREFIX}-{name}")
        return cache[name]

    return get


@pytest.fixture(scope="session")
def container_ip(host_of):
    """container_ip('app1') -> the host's address on the sandbox network."""

    def get(name):
        out = host_of(name).check_output("hostname -I")
        return out.split()[0]

    return get


def run_ansible_playbook(playbook, *args, check=False, timeout=1800):
    """Run ansible-playbook against the sandbox inventory; return CompletedProcess.

    ``playbook`` is relative to the repository root. Output is captured (stdout
    and stderr merged) so that tests can assert messages.
    """
    cmd = [str(VENV_BIN / "ansible-playbook"), "-i", str(INVENTORY), str(REPO / playbook), *args]
    proc = subprocess.run(
        cmd,
        cwd=REPO,
        env=_ansible_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-6000:]}")
    return proc


@pytest.fixture(scope="session")
def ansible_playbook():
    return run_ansible_playbook


@pytest.fixture(scope="session")
def ansible_var():
    """ansible_var('app1', 'redis_app_password') -> the fully templated value.

    Facts are gathered first so that fact-based variables resolve too.
    """
    cache = {}

    def get(host, var):
        key = (host, var)
        if key not in cache:
            cmd = [
                str(VENV_BIN / "ansible"), "-i", str(INVENTORY), host,
                "-m", "ansible.builtin.debug", "-a", f"msg={{{{ {var} | to_json }}}}",
            ]
            env = _ansible_env()
            env["ANSIBLE_LOAD_CALLBACK_PLUGINS"] = "1"
            env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
            env["ANSIBLE_GATHERING"] = "explicit"
            out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=True).stdout
            result = json.loads(out)["plays"][0]["tasks"][0]["hosts"][host]
            cache[key] = json.loads(result["msg"])
        return cache[key]

    return get


@pytest.fixture(scope="session")
def secret_values(ansible_var):
    """{vault variable: its value on app1} for every non-empty secret of ``SECRET_VARS``."""
    values = {name: ansible_var("app1", name) for name in SECRET_VARS}
    return {name: value for name, value in values.items() if value}
