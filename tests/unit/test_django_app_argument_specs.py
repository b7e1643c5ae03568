"""roles/django_app and roles/loadbalancer argument specs, enforced by playbooks/validate.yml.

validate.yml gathers no facts and validate_argument_spec runs on the
controller: the sandbox prefix used here has no containers behind it, so any
connection attempt would fail the run. Each bad value must stop the run with
a message naming the variable.
"""

import pytest
from validate_run import validate as run_validate

def validate(limit, *extra_vars):
    return run_validate(*extra_vars, limit=limit)


def test_inventory_values_pass_without_connecting():
    proc = validate("app_servers:loadbalancers")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "(item=django_app)" in proc.stdout, proc.stdout[-3000:]
    assert "(item=loadbalancer)" in proc.stdout, proc.stdout[-3000:]
    assert "UNREACHABLE" not in proc.stdout


def test_good_overrides_pass():
    proc = validate("app_servers", {
        "django_session_cookie_age": 3600,
        "django_releases_keep": 3,
        "django_tenants": {"tenant-a.localhost": "a"},
        "django_secret_key_fallbacks": ["old-key"],
        "django_log_level": "WARNING",
        "django_redis_socket_timeout": 0.25,
    })
    assert proc.returncode == 0, proc.stdout[-3000:]


@pytest.mark.parametrize(
    ("limit", "extra", "expected"),
    [
        ("app_servers", {"django_session_cookie_age": "abc"}, ["django_session_cookie_age", "int"]),
        ("app_servers", {"django_releases_keep": "x"}, ["django_releases_keep", "int"]),
        ("app_servers", {"django_bind_port": "http"}, ["django_bind_port", "int"]),
        ("app_servers", {"django_session_save_every_request": "sometimes"},
         ["django_session_save_every_request", "bool"]),
        ("app_servers", {"django_tenants": ["tenant-a.localhost"]}, ["django_tenants", "dict"]),
        ("app_servers", {"django_redis_socket_timeout": "fast"}, ["django_redis_socket_timeout", "float"]),
        ("app_servers", {"django_log_level": "LOUD"}, ["django_log_level", "LOUD"]),
        ("app_servers", {"django_database": {"host": "db", "port": "pg"}},
         ["port", "django_database"]),
        ("loadbalancers", {"loadbalancer_port": "eighty"}, ["loadbalancer_port", "int"]),
        ("loadbalancers", {"loadbalancer_forwarded_proto": "ftp"}, ["loadbalancer_forwarded_proto", "ftp"]),
    ],
)
def test_bad_value_stops_the_run_naming_the_variable(limit, extra, expected):
    proc = validate(limit, extra)
    assert proc.returncode != 0, proc.stdout[-3000:]
    for fragment in expected:
        assert fragment in proc.stdout, (fragment, proc.stdout[-3000:])
    assert "UNREACHABLE" not in proc.stdout


def test_secrets_are_not_printed_when_validation_fails():
    secret = "s3cr3t-fallback-value-for-the-test"
    proc = validate("app_servers", {"django_secret_key_fallbacks": [secret], "django_releases_keep": "x"})
    assert proc.returncode != 0
    assert secret not in proc.stdout
