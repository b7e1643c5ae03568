"""Behaviour of roles/postgresql on the converged sandbox (db1, seen from app1 and lb1).

Passwords never appear in a command line: they reach psql through the
PGPASSWORD environment variable (``docker exec -e PGPASSWORD``).
"""

import os
import re
import subprocess
import uuid

import pytest
import yaml

import sandbox

DB_HOST = "db1"
BACKUP_LINE = re.compile(r"Backup of \S+: (/\S+\.dump)")


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def docker_exec(host, argv, password=None, user=None, timeout=120):
    return sandbox.docker_exec(host, argv, env=None if password is None else {"PGPASSWORD": password},
                               user=user, timeout=timeout)


def recap(output, host):
    """{'ok': n, 'changed': n, 'failed': n, ...} from the PLAY RECAP line of host."""
    match = re.search(rf"^{host}\s+:\s+(.*)$", output, re.MULTILINE)
    assert match, output[-3000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))}


@pytest.fixture(scope="module")
def pg(ansible_var, container_ip, repo):
    defaults = yaml.safe_load((repo / "roles/postgresql/defaults/main.yml").read_text())

    def var(name):
        try:
            return ansible_var(DB_HOST, name)
        except subprocess.CalledProcessError:
            return defaults[name]

    return {
        "address": container_ip(DB_HOST),
        "port": int(var("postgresql_port")),
        "version": str(var("postgresql_version")),
        "database": var("postgresql_app_database"),
        "user": var("postgresql_app_user"),
        "password": var("postgresql_app_password"),
        "backup_dir": var("postgresql_backup_dir"),
    }


@pytest.fixture(scope="module")
def app_psql(pg):
    """app_psql(sql, host='app1', password=..., user=..., dbname=...) over TCP to db1."""

    def run(sql, host="app1", password=None, user=None, dbname=None):
        dsn = (f"host={pg['address']} port={pg['port']} dbname={dbname or pg['database']} "
               f"user={user or pg['user']} connect_timeout=5")
        return docker_exec(host, ["psql", dsn, "-v", "ON_ERROR_STOP=1", "-Atq", "-c", sql],
                           password=pg["password"] if password is None else password)

    return run


@pytest.fixture(scope="module")
def admin_psql(pg):
    """admin_psql(sql, dbname=...) as postgres on db1 over the local socket (peer)."""

    def run(sql, dbname="postgres"):
        proc = docker_exec(DB_HOST, ["psql", "-p", str(pg["port"]), "-d", dbname,
                                     "-v", "ON_ERROR_STOP=1", "-Atq", "-c", sql], user="postgres")
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    return run


@pytest.fixture(scope="module")
def role_playbook(tmp_path_factory):
    """A playbook running only the postgresql role (facts of every host first, as site.yml)."""
    path = tmp_path_factory.mktemp("pg") / "postgresql_only.yml"
    path.write_text(
        "- name: Facts of every host (pg_hba needs the app hosts' addresses)\n"
        "  hosts: all\n"
        "  gather_facts: true\n"
        "- name: PostgreSQL only\n"
        "  hosts: databases\n"
        "  roles:\n"
        "    - role: postgresql\n"
    )
    return str(path)


def dumps(host, pg):
    out = host.check_output(f"find {pg['backup_dir']} -maxdepth 1 -type f -printf '%f %m %u\\n'")
    return sorted(tuple(line.split()) for line in out.splitlines())


def server_state(host, pg):
    """Checksums of the managed configuration and the postmaster pid."""
    conf = f"/etc/postgresql/{pg['version']}/main"
    sums = host.check_output(f"sha256sum {conf}/conf.d/* {conf}/pg_hba.conf")
    pid = host.check_output(f"head -1 /var/lib/postgresql/{pg['version']}/main/postmaster.pid")
    return sums, pid


def take_backup(ansible_playbook, *args):
    # Forced on: the sandbox inventory may disable backups for the migration path.
    proc = ansible_playbook("playbooks/backup.yml", "-e", "postgresql_backup_enabled=true", *args)
    assert proc.returncode == 0, proc.stdout[-4000:]
    paths = BACKUP_LINE.findall(proc.stdout)
    assert len(paths) == 1, proc.stdout[-4000:]
    return paths[0]


# --------------------------------------------------------------------------
# server, authentication
# --------------------------------------------------------------------------
def test_listens_on_private_address_and_loopback_only(host_of, pg):
    sockets = host_of(DB_HOST).socket.get_listening_sockets()
    pg_sockets = {s for s in sockets if s.startswith("tcp") and s.endswith(f":{pg['port']}")}
    assert pg_sockets == {f"tcp://127.0.0.1:{pg['port']}", f"tcp://{pg['address']}:{pg['port']}"}


def test_app_user_connects_from_app_host_with_scram(app_psql, admin_psql, pg):
    proc = app_psql("SELECT current_user, current_database(), inet_server_addr()")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{pg['user']}|{pg['database']}|{pg['address']}"
    # The stored verifier is SCRAM, and the only rule the app can match is scram-sha-256.
    stored = admin_psql(f"SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = '{pg['user']}'")
    assert stored == "t"
    assert admin_psql("SHOW password_encryption") == "scram-sha-256"
    methods = admin_psql("SELECT DISTINCT auth_method FROM pg_hba_file_rules ORDER BY 1").splitlines()
    assert set(methods) <= {"peer", "scram-sha-256", "reject"}, methods


def test_pg_hba_has_one_rule_per_app_host(admin_psql, ansible_var, container_ip, pg):
    rules = admin_psql(
        "SELECT address, auth_method, array_to_string(database, ','), array_to_string(user_name, ',') "
        "FROM pg_hba_file_rules WHERE auth_method = 'scram-sha-256' ORDER BY address"
    ).splitlines()
    expected = sorted(f"{container_ip(h)}|scram-sha-256|{pg['database']}|{pg['user']}" for h in ansible_var(DB_HOST, "groups['app_servers']"))
    assert sorted(rules) == expected
    assert admin_psql("SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL") == "0"


def test_wrong_password_is_refused(app_psql):
    proc = app_psql("SELECT 1", password="not-the-password")
    assert proc.returncode != 0
    assert "password authentication failed" in proc.stderr, proc.stderr


def test_non_app_host_is_rejected_by_pg_hba(app_psql):
    proc = app_psql("SELECT 1", host="lb1")
    assert proc.returncode != 0
    assert "pg_hba.conf" in proc.stderr, proc.stderr
    assert "no pg_hba.conf entry" in proc.stderr or "rejects" in proc.stderr, proc.stderr


@pytest.mark.parametrize(("user", "dbname"), [(None, "postgres"), ("postgres", None)],
                         ids=["app-user-to-postgres-db", "postgres-user-to-app-db"])
def test_app_host_reaches_only_app_database_as_app_user(app_psql, user, dbname):
    proc = app_psql("SELECT 1", user=user, dbname=dbname)
    assert proc.returncode != 0
    assert "pg_hba.conf" in proc.stderr, proc.stderr


# --------------------------------------------------------------------------
# backup and restore
# --------------------------------------------------------------------------
def test_backup_writes_dump_and_keeps_newest(ansible_playbook, host_of, pg):
    db = host_of(DB_HOST)
    taken = [take_backup(ansible_playbook, "-e", "postgresql_backup_keep=2") for _ in range(3)]
    assert len(set(taken)) == 3
    name = re.compile(rf"^{re.escape(pg['database'])}-\d{{8}}T\d{{6}}Z\.dump$")
    kept = [d for d in dumps(db, pg) if name.match(d[0])]
    assert [d[0] for d in kept] == sorted(os.path.basename(p) for p in taken[1:])
    assert all(mode == "600" and owner == "postgres" for _, mode, owner in kept), kept
    assert not [d for d in dumps(db, pg) if d[0].endswith(".partial")]
    directory = db.file(pg["backup_dir"])
    assert directory.user == "postgres" and directory.mode == 0o700
    # A custom-format dump of the app database.
    toc = db.check_output(f"runuser -u postgres -- pg_restore --list {taken[-1]}")
    assert f"dbname: {pg['database']}" in toc


def test_backup_disabled_takes_no_dump(ansible_playbook, host_of, pg):
    before = dumps(host_of(DB_HOST), pg)
    proc = ansible_playbook("playbooks/backup.yml", "-e", "postgresql_backup_enabled=false")
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert not BACKUP_LINE.search(proc.stdout)
    assert dumps(host_of(DB_HOST), pg) == before


@pytest.fixture
def marker_table(app_psql, admin_psql, pg):
    table = "bundle_test_restore_marker"
    proc = app_psql(f"CREATE TABLE IF NOT EXISTS {table} (id int PRIMARY KEY, note text)")
    assert proc.returncode == 0, proc.stderr
    yield table
    admin_psql(f"DROP TABLE IF EXISTS {table}", dbname=pg["database"])


def test_restore_brings_back_the_marker(ansible_playbook, app_psql, admin_psql, marker_table, pg):
    token = uuid.uuid4().hex
    proc = app_psql(f"INSERT INTO {marker_table} VALUES (1, '{token}') "
                    "ON CONFLICT (id) DO UPDATE SET note = excluded.note")
    assert proc.returncode == 0, proc.stderr
    dump = take_backup(ansible_playbook)

    proc = app_psql(f"UPDATE {marker_table} SET note = 'changed after the backup'; "
                    f"INSERT INTO {marker_table} VALUES (2, 'new after the backup'); "
                    "CREATE TABLE bundle_test_after_backup (id int)")
    assert proc.returncode == 0, proc.stderr

    proc = ansible_playbook("playbooks/restore.yml", "-e", f"postgresql_restore_file={dump}")
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert f"Restoring {dump}" in proc.stdout

    proc = app_psql(f"SELECT id, note FROM {marker_table} ORDER BY id")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"1|{token}"
    # A table the dump does not know (e.g. from a newer migration) is gone too.
    assert app_psql("SELECT to_regclass('bundle_test_after_backup') IS NULL").stdout.strip() == "t"
    owner = admin_psql(f"SELECT tableowner FROM pg_tables WHERE tablename = '{marker_table}'", dbname=pg["database"])
    assert owner == pg["user"]


def test_failed_restore_changes_nothing(ansible_playbook, app_psql, admin_psql, marker_table, pg):
    """A dump the app role cannot replay (an untrusted extension) fails as one transaction."""
    admin_psql("CREATE EXTENSION IF NOT EXISTS file_fdw", dbname=pg["database"])
    try:
        dump = take_backup(ansible_playbook)
    finally:
        admin_psql("DROP EXTENSION IF EXISTS file_fdw", dbname=pg["database"])
    token = uuid.uuid4().hex
    assert app_psql(f"INSERT INTO {marker_table} VALUES (3, '{token}')").returncode == 0

    proc = ansible_playbook("playbooks/restore.yml", "-e", f"postgresql_restore_file={dump}")
    assert proc.returncode != 0
    assert "file_fdw" in proc.stdout, proc.stdout[-4000:]
    # Rolled back: the row written after the backup is still there, no script left behind.
    assert app_psql(f"SELECT note FROM {marker_table} WHERE id = 3").stdout.strip() == token
    assert admin_psql("SELECT count(*) FROM pg_extension WHERE extname = 'file_fdw'", dbname=pg["database"]) == "0"
    leftovers = docker_exec(DB_HOST, ["find", pg["backup_dir"], "-name", "*.sql"])
    assert leftovers.returncode == 0 and leftovers.stdout.strip() == ""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "postgresql_restore_file"),
        (["-e", "postgresql_restore_file=/var/backups/postgresql/does-not-exist.dump"], "does not exist"),
        (["-e", "postgresql_restore_file=/etc/hostname"], "is not a pg_dump archive"),
    ],
)
def test_restore_refuses_without_a_valid_dump(ansible_playbook, app_psql, marker_table, extra, message):
    token = uuid.uuid4().hex
    assert app_psql(f"INSERT INTO {marker_table} VALUES (7, '{token}')").returncode == 0
    proc = ansible_playbook("playbooks/restore.yml", *extra)
    assert proc.returncode != 0
    assert message in proc.stdout, proc.stdout[-4000:]
    assert "Restore the dump into the application database" not in proc.stdout
    assert app_psql(f"SELECT note FROM {marker_table} WHERE id = 7").stdout.strip() == token


# --------------------------------------------------------------------------
# checks that stop the role before it changes anything
# --------------------------------------------------------------------------
@pytest.mark.parametrize("port", ["0", "70000"])
def test_port_out_of_range_stops_before_any_change(ansible_playbook, role_playbook, host_of, pg, port):
    before = server_state(host_of(DB_HOST), pg)
    proc = ansible_playbook(role_playbook, "-e", f"postgresql_port={port}")
    assert proc.returncode != 0
    assert "postgresql_port must be an integer between 1 and 65535" in proc.stdout, proc.stdout[-4000:]
    assert recap(proc.stdout, DB_HOST)["changed"] == 0
    assert server_state(host_of(DB_HOST), pg) == before


def test_bad_restart_setting_fails_without_stopping_the_server(ansible_playbook, role_playbook, host_of,
                                                               app_psql, pg):
    db = host_of(DB_HOST)
    _, pid = server_state(db, pg)
    try:
        proc = ansible_playbook(role_playbook, "-e", "postgresql_shared_buffers=12XB")
        assert proc.returncode != 0
        assert "shared_buffers" in proc.stdout, proc.stdout[-4000:]
        # Still the same server process, still serving the app.
        assert server_state(db, pg)[1] == pid
        assert app_psql("SELECT 1").stdout.strip() == "1"
    finally:
        fixed = ansible_playbook(role_playbook)
    assert fixed.returncode == 0, fixed.stdout[-4000:]
    # Converged again: a second run changes nothing.
    again = ansible_playbook(role_playbook)
    assert again.returncode == 0, again.stdout[-4000:]
    assert recap(again.stdout, DB_HOST)["changed"] == 0, again.stdout[-4000:]
