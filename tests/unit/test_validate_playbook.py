"""playbooks/validate.yml stops a run before any host is contacted."""

from validate_run import validate


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
