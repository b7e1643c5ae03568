"""Run playbooks/validate.yml on the controller alone, for the unit tests.

validate.yml gathers no facts and validate_argument_spec/assert are action
plugins that run on the controller. The sandbox prefix used here has no
containers behind it, so any connection attempt would make the run fail
(UNREACHABLE): a passing run proves nothing was contacted.
"""

import json
import os
import pathlib
import subprocess

REPO = pathlib.Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = REPO / ".venv" / "bin" / "ansible-playbook"
EXAMPLE_VAULT_PASSWORD = REPO / "inventories" / "example-vault-password.txt"


def validate(*extra_vars, limit=None, inventory="sandbox", args=()):
    """Return the CompletedProcess (stdout and stderr merged) of validate.yml.

    Each extra var is a dict passed as JSON with -e, or a str passed as is.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    env["ANSIBLE_NOCOLOR"] = "1"
    env["BUNDLE_SANDBOX_PREFIX"] = "unit-validate-no-such-host"
    inventory_dir = pathlib.Path(inventory)
    if not inventory_dir.is_absolute():
        inventory_dir = REPO / "inventories" / inventory
    cmd = [str(ANSIBLE_PLAYBOOK), "-i", str(inventory_dir),
           str(REPO / "playbooks" / "validate.yml"),
           "--vault-password-file", str(EXAMPLE_VAULT_PASSWORD), *args]
    if limit:
        cmd += ["--limit", limit]
    for ev in extra_vars:
        cmd += ["-e", ev if isinstance(ev, str) else json.dumps(ev)]
    return subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300, check=False)
