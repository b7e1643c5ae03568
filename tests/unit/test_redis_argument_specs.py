"""roles/redis/meta/argument_specs.yml, enforced by playbooks/validate.yml.

validate.yml gathers no facts and validate_argument_spec is an action plugin
that runs on the controller: these tests use a sandbox prefix with no
containers behind it, so any connection attempt would fail the run. Each bad
value must stop the run with a message naming the variable. Port ranges are
not expressible in argument specs: the role's first task checks them
(molecule/default/tests/test_redis.py::test_port_out_of_range...).
"""

import pytest
from validate_run import validate as run_validate

GOOD_INSTANCE = {"name": "sessions", "port": 6380, "persistence": "aof",
                 "appendfsync": "everysec", "maxmemory": "128mb", "maxmemory_policy": "noeviction"}


def validate(*extra_vars):
    return run_validate(*extra_vars, limit="redis_servers")


def instance(**changes):
    return dict(GOOD_INSTANCE, **changes)


def test_inventory_values_pass_without_connecting():
    proc = validate()
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "(item=redis)" in proc.stdout, proc.stdout[-3000:]
    assert "UNREACHABLE" not in proc.stdout


def test_single_instance_layout_passes():
    proc = validate({
        "redis_instances": [instance(name="main", port=6379)],
        "redis_purposes": {"sessions": {"instance": "main", "db": 0},
                           "cache": {"instance": "main", "db": 1},
                           "channels": {"instance": "main", "db": 2}},
    })
    assert proc.returncode == 0, proc.stdout[-3000:]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"redis_instances": [instance(appendfsync="sometimes")]},
         ["appendfsync must be one of: always, everysec, no, got: sometimes", "redis_instances"]),
        ({"redis_instances": [instance(persistence="snapshot")]},
         ["persistence must be one of: aof, rdb, none, got: snapshot", "redis_instances"]),
        ({"redis_instances": [instance(maxmemory_policy="lru")]},
         ["maxmemory_policy must be one of", "got: lru", "redis_instances"]),
        ({"redis_instances": [instance(port="high")]},
         ["argument 'port' is of type str found in 'redis_instances'"]),
        ({"redis_instances": [{"port": 6380}]},
         ["missing required arguments: name found in redis_instances"]),
        ({"redis_purposes": ["sessions"]},
         ["argument 'redis_purposes' is of type list"]),
        ({"redis_protected_mode": "maybe"},
         ["argument 'redis_protected_mode' is of type str"]),
        ({"redis_databases": "many"},
         ["argument 'redis_databases' is of type str"]),
    ],
    ids=["appendfsync", "persistence", "maxmemory_policy", "port-type", "name-missing",
         "purposes-not-dict", "protected-mode", "databases"],
)
def test_bad_value_stops_the_run_naming_the_variable(extra, expected):
    proc = validate(extra)
    assert proc.returncode != 0, proc.stdout[-3000:]
    # The failure message itself (the output also echoes the whole spec).
    assert "Validation of arguments failed:" in proc.stdout, proc.stdout[-3000:]
    message = proc.stdout.split("Validation of arguments failed:", 1)[1].split("validate_args_context", 1)[0]
    for text in expected:
        assert text in message, (text, message)
    assert "UNREACHABLE" not in proc.stdout
