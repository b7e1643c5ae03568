"""roles/postgresql/meta/argument_specs.yml, enforced by playbooks/validate.yml.

validate.yml needs no running host (validate_argument_spec does not connect),
so these run on the controller alone. Each bad value must stop the run and
the message must name the variable.
"""

import pytest
from validate_run import validate as run_validate

def validate(*extra_vars):
    return run_validate(*extra_vars, limit="databases")


def test_inventory_values_pass():
    proc = validate()
    assert proc.returncode == 0, proc.stdout[-3000:]
    # The postgresql spec was really checked (not skipped for want of a spec).
    assert "postgresql" in proc.stdout, proc.stdout[-3000:]
    assert "skipping" not in proc.stdout, proc.stdout[-3000:]


@pytest.mark.parametrize(
    ("extra", "variable"),
    [
        ({"postgresql_port": "abc"}, "postgresql_port"),
        ({"postgresql_max_connections": "lots"}, "postgresql_max_connections"),
        ({"postgresql_listen_addresses": {"a": 1}}, "postgresql_listen_addresses"),
        ({"postgresql_backup_keep": "seven"}, "postgresql_backup_keep"),
        ({"postgresql_backup_enabled": "maybe"}, "postgresql_backup_enabled"),
        ({"postgresql_extra_settings": ["wal_level=logical"]}, "postgresql_extra_settings"),
        # Unknown choice inside a list of dicts: trust is never offered.
        ({"postgresql_hba_extra_rules": [{"type": "host", "database": "all", "user": "all",
                                          "address": "0.0.0.0/0", "method": "trust"}]},
         "postgresql_hba_extra_rules"),
        ({"postgresql_hba_extra_rules": [{"type": "hostgssenc", "database": "all", "user": "all",
                                          "method": "scram-sha-256"}]},
         "postgresql_hba_extra_rules"),
    ],
)
def test_bad_value_stops_the_run_naming_the_variable(extra, variable):
    proc = validate(extra)
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert "Validation of arguments failed" in proc.stdout, proc.stdout[-3000:]
    assert variable in proc.stdout, proc.stdout[-3000:]


def test_app_password_is_not_printed_on_failure():
    secret = "Sentinel-Password-4711"
    proc = validate({"postgresql_app_password": secret, "postgresql_port": "abc"})
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert "postgresql_port" in proc.stdout
    assert secret not in proc.stdout
