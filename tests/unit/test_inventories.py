"""Every inventory has the same groups; only host counts and values differ."""

import json
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BIN = REPO / ".venv" / "bin"
GROUPS = ("loadbalancers", "app_servers", "databases", "redis_servers")
INVENTORIES = sorted(p.parent.name for p in (REPO / "inventories").glob("*/hosts.yml"))


def inventory(name):
    out = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(REPO / "inventories" / name), "--list",
         "--vault-password-file", str(REPO / "inventories" / "example-vault-password.txt")],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout
    return json.loads(out)


def test_the_three_environments_exist():
    assert {"sandbox", "staging", "production"} <= set(INVENTORIES)


@pytest.mark.parametrize("name", INVENTORIES)
def test_groups(name):
    data = inventory(name)
    for group in GROUPS:
        assert data.get(group, {}).get("hosts"), f"{name}: group {group} is empty or missing"
    # A host belongs to exactly one service group: roles never fight over a host.
    seen = {}
    for group in GROUPS:
        for host in data[group]["hosts"]:
            assert host not in seen, f"{name}: {host} is in {seen.get(host)} and {group}"
            seen[host] = group


def test_sandbox_is_what_molecule_creates():
    """molecule/default takes its hosts from inventories/sandbox (no second list)."""
    molecule = (REPO / "molecule" / "default" / "molecule.yml").read_text()
    assert "../../inventories/sandbox/" in molecule
    assert "../../playbooks/sandbox_create.yml" in molecule
