"""playbooks/validate.yml stops a run before any host is contacted."""

import shutil
import subprocess

from validate_run import REPO, validate

REAL_SECRETS = (
    "vault_redis_admin_password", "vault_redis_app_password",
    "vault_postgresql_app_password", "vault_django_secret_key",
    "vault_django_demo_superuser_password",
)


def run_validate(inventory, *extra):
    return validate(inventory=inventory, args=extra)


def test_example_vault_placeholders_are_refused():
    proc = run_validate("staging")
    out = proc.stdout
    assert proc.returncode != 0
    assert "still hold the CHANGE-ME placeholders" in out
    assert "vault_postgresql_app_password" in out
    # Names only: the placeholder values themselves are not echoed.
    assert "CHANGE-ME-staging-postgresql-app" not in out


def test_real_secrets_pass(tmp_path):
    overrides = tmp_path / "secrets.yml"
    overrides.write_text(
        "\n".join(
            f"{name}: not-a-placeholder-{name}"
            for name in (
                "vault_redis_admin_password", "vault_redis_app_password",
                "vault_postgresql_app_password", "vault_django_secret_key",
                "vault_django_demo_superuser_password",
            )
        )
        + "\n"
    )
    proc = run_validate("production", "-e", f"@{overrides}")
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_wrong_type_names_the_variable():
    proc = run_validate("sandbox", "-e", '{"base_deploy_user_sudo": "maybe"}')
    out = proc.stdout
    assert proc.returncode != 0
    assert "base_deploy_user_sudo" in out


def test_missing_vault_secret_is_named(tmp_path):
    """A vault without one secret stops the run, naming it, before any host."""
    inventory = tmp_path / "staging"
    shutil.copytree(REPO / "inventories" / "staging", inventory)
    vault = inventory / "group_vars" / "all" / "vault.yml"
    vault.write_text("".join(f"{name}: real-value-of-{name}\n" for name in REAL_SECRETS
                             if name != "vault_django_secret_key"))
    proc = validate(inventory=str(inventory))
    assert proc.returncode != 0
    assert "Missing secrets in the staging inventory: vault_django_secret_key." in proc.stdout, proc.stdout[-3000:]
    # With the secret present the same inventory passes: the message is about it alone.
    vault.write_text(vault.read_text() + "vault_django_secret_key: real-value-of-the-key\n")
    assert validate(inventory=str(inventory)).returncode == 0


def test_empty_vault_secret_is_refused(tmp_path):
    inventory = tmp_path / "production"
    shutil.copytree(REPO / "inventories" / "production", inventory)
    (inventory / "group_vars" / "all" / "vault.yml").write_text(
        "".join(f"{name}: \"{'' if name == 'vault_redis_app_password' else 'x-' + name}\"\n" for name in REAL_SECRETS))
    proc = validate(inventory=str(inventory))
    assert proc.returncode != 0
    assert "Missing secrets in the production inventory: vault_redis_app_password." in proc.stdout, proc.stdout[-3000:]


def test_unknown_environment_stops_make_deploy():
    """`make deploy ENV=<typo>` stops at once with the list of environments."""
    proc = subprocess.run(["make", "--no-print-directory", "deploy", "ENV=prodcution"], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0
    assert "Unknown environment 'prodcution': use ENV=production, ENV=sandbox, ENV=staging" in proc.stderr, proc.stderr
    # Nothing ran: no ansible-playbook command was even echoed.
    assert "ansible-playbook" not in proc.stdout
