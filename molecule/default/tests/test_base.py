"""roles/base on every host of the topology."""

import time

import pytest

import sandbox

HOSTS = ["lb1", "app1", "app2", "db1", "redis1"]


@pytest.mark.parametrize("name", HOSTS)
def test_base_packages_and_clients(host_of, name):
    host = host_of(name)
    for pkg in ("acl", "postgresql-client", "redis-tools", "sudo", "tzdata"):
        assert host.package(pkg).is_installed, f"{pkg} missing on {name}"
    assert host.run("psql --version").rc == 0
    assert host.run("redis-cli --version").rc == 0


@pytest.mark.parametrize("name", HOSTS)
def test_time_zone(host_of, ansible_var, name):
    host = host_of(name)
    wanted = ansible_var(name, "base_timezone | default('Etc/UTC')")
    out = host.check_output("timedatectl show --property=Timezone --value")
    assert out.strip() == wanted


@pytest.mark.parametrize("name", HOSTS)
def test_deploy_user_is_not_root_and_can_sudo(host_of, name):
    host = host_of(name)
    user = host.user("deploy")
    assert user.exists
    assert user.uid != 0
    sudoers = host.file("/etc/sudoers.d/90-deploy")
    assert sudoers.mode == 0o440
    # The rule really works: sudo as the deploy user, no password, becomes root.
    assert host.run("runuser -u deploy -- sudo -n id -u").stdout.strip() == "0"


@pytest.mark.parametrize("name", HOSTS)
def test_journal_is_persistent(host_of, name):
    host = host_of(name)
    assert host.file("/etc/systemd/journald.conf.d/10-bundle.conf").contains("^Storage=persistent")
    # journald really writes to disk: a marker logged now is in /var/log/journal.
    marker = f"bundle-journal-check-{name}-{time.time_ns()}"
    host.run(f"logger -t bundle-test {marker}")
    host.run("journalctl --flush")
    files = host.check_output("find /var/log/journal -name '*.journal' | head -n 1")
    assert files.startswith("/var/log/journal/"), "no journal file on disk"
    # logger hands the line to journald over a datagram socket: it is read
    # asynchronously, so allow journald a moment.
    sandbox.wait_until(lambda: marker in host.check_output("journalctl -t bundle-test --no-pager -o cat"), 10,
                       f"{marker} is not in the journal of {name}")
