"""settings_templates/deploy_settings.py.j2 rendered by Ansible, compiled and imported.

For every inventory in inventories/*/ the template is rendered by a real
``ansible-playbook`` run (ansible's own templar, ``to_json`` and ``comment``)
with that inventory's variables. The ``django_*`` variables are the
``django_app`` role's own defaults (plus a few test values), installed as a
throwaway role's defaults (lowest precedence, so an inventory that defines
them wins) and wired to the shared contract variables (``redis_*``,
``postgresql_*``, ``vault_*``). The vault secrets are overridden with a hostile
value (quotes, backslashes, ``{{``, ``%``, non-ASCII) so the test proves it
travels through the inventory's own indirections into the rendered module
unchanged.

The rendered module is then imported by the sample project's virtualenv
(.cache/venv-sample, prepared by sample_project/run-tests.sh --venv-only)
with ``django.setup()`` and ``manage.py check``; no database or Redis is
contacted.
"""

import json
import os
import pathlib
import py_compile
import shutil
import subprocess
import sys
import textwrap

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "settings_templates" / "deploy_settings.py.j2"
VENV_BIN = REPO / ".venv" / "bin"
SAMPLE_PYTHON = REPO / ".cache" / "venv-sample" / "bin" / "python"

# Quotes, backslashes, Jinja and printf markers, Latin-1, BMP and non-BMP chars.
HOSTILE = "pä$$\"w'o\\rd€ {{ x }} {% raw %} %s %(n)s \\u00e9 :@/?#[]+ 😀"
HOSTILE_REDIS = HOSTILE + " redis"
HOSTILE_DB = HOSTILE + " db"

INVENTORIES = sorted(
    path for path in (REPO / "inventories").iterdir() if path.is_dir() and not path.name.startswith(".")
)

# The role's real defaults (roles/django_app/defaults/main.yml), with these
# test values on top: addresses that need no gathered facts (the inventory
# host names), and non-default values that prove they reach the settings.
ROLE_DEFAULTS_FILE = REPO / "roles" / "django_app" / "defaults" / "main.yml"
TEST_DEFAULTS = {
    "django_base_settings_module": "bundle_sample.settings",
    "django_release_id": "20261204T2000-test",
    "django_secret_key_fallbacks": ["previous-key-1", "previous-key-2"],
    "django_allowed_hosts": ["app.example.org", ".tenant.example"],
    "django_csrf_trusted_origins": ["https://app.example.org"],
    "django_database": {
        "host": "{{ groups['databases'] | first }}",
        "port": "{{ postgresql_port }}",
        "name": "{{ postgresql_app_database }}",
        "user": "{{ postgresql_app_user }}",
        "password": "{{ postgresql_app_password }}",
        "conn_max_age": 60,
        "connect_timeout": 3,
        "pool_max_size": 6,
        "pool_min_size": 2,
        "pool_timeout": 7,
    },
    "django_redis_host": "{{ groups['redis_servers'] | first }}",
    "django_static_root": "/srv/app/shared/static",
}


def role_defaults():
    """YAML of the render role's defaults: the django_app role's own, then TEST_DEFAULTS."""
    defaults = yaml.safe_load(ROLE_DEFAULTS_FILE.read_text(encoding="utf-8"))
    missing = sorted(set(TEST_DEFAULTS) - set(defaults))
    assert not missing, f"TEST_DEFAULTS names variables the role does not define: {missing}"
    defaults.update(TEST_DEFAULTS)
    return yaml.safe_dump(defaults, allow_unicode=True, sort_keys=True)


PROBE = textwrap.dedent(
    """
    import json, sys
    import django
    django.setup()
    from django.conf import settings as s
    from django.core.management import call_command
    import redis

    import io
    call_command("check", fail_level="ERROR", stdout=io.StringIO())

    def parsed(url):
        kw = redis.ConnectionPool.from_url(url).connection_kwargs
        return {k: kw.get(k) for k in ("host", "port", "db", "username", "password")}

    import channels.auth, bundle_runtime.channels_auth
    json.dump({
        "SECRET_KEY": s.SECRET_KEY,
        "SECRET_KEY_FALLBACKS": s.SECRET_KEY_FALLBACKS,
        "DEBUG": s.DEBUG,
        "ALLOWED_HOSTS": s.ALLOWED_HOSTS,
        "CSRF_TRUSTED_ORIGINS": s.CSRF_TRUSTED_ORIGINS,
        "DATABASE": s.DATABASES["default"],
        "CACHES": s.CACHES,
        "CACHE_URLS": {alias: parsed(c["LOCATION"]) for alias, c in s.CACHES.items()},
        "CHANNEL_LAYERS": s.CHANNEL_LAYERS,
        "CHANNELS_URL": parsed(s.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["address"]),
        "SESSION": {k: getattr(s, k) for k in (
            "SESSION_ENGINE", "SESSION_CACHE_ALIAS", "SESSION_COOKIE_AGE", "SESSION_SAVE_EVERY_REQUEST",
            "BUNDLE_SESSION_REFRESH_SECONDS",
            "SESSION_EXPIRE_AT_BROWSER_CLOSE", "SESSION_COOKIE_DOMAIN", "SESSION_COOKIE_SECURE",
            "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS", "SECURE_SSL_REDIRECT")},
        "SECURE_PROXY_SSL_HEADER": s.SECURE_PROXY_SSL_HEADER,
        "SESSION_STORE": (lambda c: [c.__module__, c.__qualname__, c.cache_key_prefix])(
            __import__("importlib").import_module(s.SESSION_ENGINE).SessionStore),
        "DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS": s.DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS,
        "DJANGO_REDIS_LOGGER": s.DJANGO_REDIS_LOGGER,
        "INSTALLED_APPS": s.INSTALLED_APPS,
        "MIDDLEWARE": s.MIDDLEWARE,
        "STATIC_ROOT": str(s.STATIC_ROOT),
        "STORAGES": s.STORAGES,
        "BUNDLE_RELEASE_ID": s.BUNDLE_RELEASE_ID,
        "BUNDLE_TENANTS": s.BUNDLE_TENANTS,
        "LOGGING": s.LOGGING,
        "EXTRA": {k: getattr(s, k) for k in sys.argv[1:]},
        "channels_get_user_patched": channels.auth.get_user is bundle_runtime.channels_auth.get_user,
    }, sys.stdout, default=lambda o: getattr(o, "__qualname__", repr(o)))
    """
)


def _vault_password_configured():
    return any(os.environ.get(name) for name in (
        "ANSIBLE_VAULT_PASSWORD_FILE", "ANSIBLE_VAULT_IDENTITY_LIST", "DEFAULT_VAULT_IDENTITY_LIST"))


def _inventory_for_test(inventory, tmp_path):
    """The inventory itself, or a copy without whole-file vaults if no vault password is set.

    The test overrides every vault_* secret it uses with extra vars, so an
    encrypted vars file (staging/production) is only in the way when the
    controller has no vault password; then it is replaced by an empty file.
    """
    encrypted = [
        path for path in inventory.rglob("*")
        if path.is_file() and path.read_bytes()[:14] == b"$ANSIBLE_VAULT"
    ]
    if not encrypted or _vault_password_configured():
        return inventory
    copy = tmp_path / "inventories" / inventory.name
    shutil.copytree(inventory, copy, ignore=shutil.ignore_patterns(".secrets"))
    for path in encrypted:
        (copy / path.relative_to(inventory)).write_text("---\n{}\n", encoding="utf-8")
    return copy


def _yaml_unsafe(value):
    # JSON string syntax is valid YAML; !unsafe keeps Ansible from templating "{{".
    return "!unsafe " + json.dumps(value, ensure_ascii=False)


@pytest.fixture(scope="session")
def sample_python():
    subprocess.run([str(REPO / "sample_project" / "run-tests.sh"), "--venv-only"], check=True)
    return SAMPLE_PYTHON


@pytest.fixture()
def render(tmp_path):
    """render(inventory, **overrides) -> path of the rendered bundle_deploy_settings.py."""

    def _render(inventory, overrides=None):
        role = tmp_path / "roles" / "render_deploy_settings"
        (role / "defaults").mkdir(parents=True, exist_ok=True)
        (role / "tasks").mkdir(exist_ok=True)
        (role / "defaults" / "main.yml").write_text(role_defaults(), encoding="utf-8")
        dest = tmp_path / "conf" / "bundle_deploy_settings.py"
        dest.parent.mkdir(exist_ok=True)
        (role / "tasks" / "main.yml").write_text(
            json.dumps([{
                "name": "Render the deploy settings",
                "ansible.builtin.template": {"src": str(TEMPLATE), "dest": str(dest), "mode": "0640"},
            }]),
            encoding="utf-8",
        )
        playbook = tmp_path / "render.yml"
        playbook.write_text(
            json.dumps([{
                "name": "Render",
                "hosts": "app_servers[0]",
                "gather_facts": False,
                "roles": ["render_deploy_settings"],
            }]),
            encoding="utf-8",
        )
        extra = tmp_path / "extra.yml"
        lines = [
            f"vault_django_secret_key: {_yaml_unsafe(HOSTILE)}",
            f"vault_redis_app_password: {_yaml_unsafe(HOSTILE_REDIS)}",
            f"vault_postgresql_app_password: {_yaml_unsafe(HOSTILE_DB)}",
            "ansible_connection: local",
            f"ansible_python_interpreter: {json.dumps(sys.executable)}",
        ]
        lines += [f"{name}: {json.dumps(value, ensure_ascii=False)}" for name, value in (overrides or {}).items()]
        extra.write_text("\n".join(lines) + "\n", encoding="utf-8")
        env = dict(os.environ)
        env.update(
            ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
            ANSIBLE_ROLES_PATH=str(tmp_path / "roles"),
            PATH=f"{VENV_BIN}:{env.get('PATH', '')}",
        )
        proc = subprocess.run(
            [
                str(VENV_BIN / "ansible-playbook"), "-i", str(_inventory_for_test(inventory, tmp_path)),
                str(playbook), "-e", f"@{extra}",
            ],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False,
        )
        assert proc.returncode == 0, proc.stdout[-4000:]
        assert oct(dest.stat().st_mode & 0o777) == "0o640"
        return dest

    return _render


def load(sample_python, rendered, *extra_names):
    py_compile.compile(str(rendered), doraise=True)
    env = dict(os.environ)
    env.update(PYTHONPATH=str(rendered.parent), DJANGO_SETTINGS_MODULE="bundle_deploy_settings")
    proc = subprocess.run(
        [str(sample_python), "-c", PROBE, *extra_names],
        env=env, cwd=rendered.parent, capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout)


def inventory_app_value(inventory, name, default):
    """A django_* value as the inventory sets it (group_vars/all/app.yml), else the default."""
    path = inventory / "group_vars" / "all" / "app.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
    return (data or {}).get(name, default)


@pytest.mark.parametrize("inventory", INVENTORIES, ids=[p.name for p in INVENTORIES])
def test_rendered_settings_per_inventory(inventory, render, sample_python):
    rendered = render(inventory)
    text = rendered.read_text(encoding="utf-8")
    assert text.startswith("#\n# Ansible managed"), text[:200]
    s = load(sample_python, rendered)

    # Secrets round-trip exactly, through the inventory's own variables.
    assert s["SECRET_KEY"] == HOSTILE
    assert s["SECRET_KEY_FALLBACKS"] == ["previous-key-1", "previous-key-2"]
    assert s["DATABASE"]["PASSWORD"] == HOSTILE_DB
    for alias in ("default", "sessions"):
        assert s["CACHE_URLS"][alias]["password"] == HOSTILE_REDIS
        assert s["CACHE_URLS"][alias]["username"] == "app"
    assert s["CHANNELS_URL"]["password"] == HOSTILE_REDIS
    assert s["CHANNELS_URL"]["username"] == "app"

    # Sessions: the bundle's cached_db engine (refresh when due instead of
    # SESSION_SAVE_EVERY_REQUEST) through the dedicated alias, host-only cookies.
    assert s["SESSION"] == {
        "SESSION_ENGINE": "bundle_runtime.sessions",
        "SESSION_CACHE_ALIAS": "sessions",
        "SESSION_COOKIE_AGE": 86400,
        "SESSION_SAVE_EVERY_REQUEST": False,
        "BUNDLE_SESSION_REFRESH_SECONDS": 300,
        "SESSION_EXPIRE_AT_BROWSER_CLOSE": False,
        "SESSION_COOKIE_DOMAIN": None,
        # Per environment: the inventory's values (sandbox plain HTTP, others HTTPS + HSTS).
        "SESSION_COOKIE_SECURE": inventory_app_value(inventory, "django_secure_cookies", True),
        "CSRF_COOKIE_SECURE": inventory_app_value(inventory, "django_secure_cookies", True),
        "SECURE_HSTS_SECONDS": inventory_app_value(inventory, "django_secure_hsts_seconds", 0),
        "SECURE_SSL_REDIRECT": False,
    }
    assert s["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    # Same class name (signing salt) and cache prefix as Django's cached_db:
    # sessions of the db/cached_db engines stay readable after the switch.
    assert s["SESSION_STORE"] == ["bundle_runtime.sessions", "SessionStore", "django.contrib.sessions.cached_db"]

    # Caches: django-redis, short timeouts, no retries, errors ignored and logged.
    assert set(s["CACHES"]) == {"default", "sessions"}
    for alias, cache in s["CACHES"].items():
        assert cache["BACKEND"] == "django_redis.cache.RedisCache"
        options = cache["OPTIONS"]
        assert options["IGNORE_EXCEPTIONS"] is True
        assert options["REDIS_CLIENT_CLASS"] == "bundle_runtime.redis_client.CircuitBreakerRedis"
        assert options["SOCKET_CONNECT_TIMEOUT"] == 0.5
        assert options["SOCKET_TIMEOUT"] == 0.5
        assert options["CONNECTION_POOL_KWARGS"] == {"max_connections": 50, "retry_on_timeout": False}
    # Tenant-aware keys on the default cache only where the inventory has tenants;
    # never on the sessions alias (session keys are shared by a tenant's hosts).
    if inventory_app_value(inventory, "django_tenants", {}):
        assert s["CACHES"]["default"]["KEY_FUNCTION"] == "bundle_runtime.tenants.make_key"
    else:
        assert "KEY_FUNCTION" not in s["CACHES"]["default"]
    assert "KEY_FUNCTION" not in s["CACHES"]["sessions"]
    assert s["DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS"] is True
    assert s["DJANGO_REDIS_LOGGER"] == "django_redis"
    assert s["LOGGING"]["loggers"]["django_redis"]["level"] == "WARNING"
    assert s["LOGGING"]["root"]["level"] == "INFO"

    # Each purpose has its own instance or db number.
    where = [(u["host"], u["port"], u["db"]) for u in (*s["CACHE_URLS"].values(), s["CHANNELS_URL"])]
    assert len(set(where)) == 3, where

    # Channels.
    layer = s["CHANNEL_LAYERS"]["default"]
    assert layer["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    assert list(layer["CONFIG"]["hosts"][0]) == ["address", "socket_connect_timeout", "socket_timeout"]
    # Longer than channels_redis' 5 s blocking read.
    assert layer["CONFIG"]["hosts"][0]["socket_timeout"] == 15.0
    assert s["channels_get_user_patched"] is True

    # Database.
    db = s["DATABASE"]
    assert db["ENGINE"] == "django.db.backends.postgresql"
    # A pool per worker process; persistent connections would leak under ASGI.
    assert db["CONN_MAX_AGE"] == 0 and db["CONN_HEALTH_CHECKS"] is True
    assert db["OPTIONS"] == {"connect_timeout": 3, "pool": {"min_size": 2, "max_size": 6, "timeout": 7.0}}

    # Runtime app and middleware order.
    assert s["INSTALLED_APPS"].count("bundle_runtime") == 1
    mw = s["MIDDLEWARE"]
    assert mw.index("whitenoise.middleware.WhiteNoiseMiddleware") == mw.index(
        "django.middleware.security.SecurityMiddleware") + 1
    assert mw.index("bundle_runtime.tenants.TenantMiddleware") == mw.index(
        "django.contrib.auth.middleware.AuthenticationMiddleware") + 1
    assert s["STORAGES"]["staticfiles"]["BACKEND"] == "whitenoise.storage.CompressedStaticFilesStorage"
    assert s["STATIC_ROOT"] == "/srv/app/shared/static"
    assert s["BUNDLE_RELEASE_ID"] == "20261204T2000-test"
    assert s["BUNDLE_TENANTS"] == inventory_app_value(inventory, "django_tenants", {})
    assert s["DEBUG"] is False


def test_tenants_debug_and_extra_settings(render, sample_python):
    rendered = render(
        INVENTORIES[0],
        {
            "django_tenants": {"a.tenant.example": "alpha", "b.tenant.example": "beta"},
            "django_debug": True,
            "django_secure_proxy_ssl_header": False,
            "django_log_level": "debug",
            "django_database": {"host": "db.example", "port": 5432, "name": "app", "user": "app",
                                "password": "p'w\"d", "conn_max_age": 30, "connect_timeout": 4,
                                "pool_max_size": 0},
            "django_extra_settings": {
                "FEATURE_FLAGS": {"beta": True, "limit": None, "ratio": 0.25, "names": ["a", "q\"'\\ü 😀"]},
                "EMAIL_HOST": "smtp.example.org",
            },
        },
    )
    s = load(sample_python, rendered, "FEATURE_FLAGS", "EMAIL_HOST")
    assert s["BUNDLE_TENANTS"] == {"a.tenant.example": "alpha", "b.tenant.example": "beta"}
    assert s["CACHES"]["default"]["KEY_FUNCTION"] == "bundle_runtime.tenants.make_key"
    assert "KEY_FUNCTION" not in s["CACHES"]["sessions"]
    assert s["DEBUG"] is True
    assert s["SECURE_PROXY_SSL_HEADER"] is None
    assert s["LOGGING"]["root"]["level"] == "DEBUG"
    # pool_max_size 0: no pool, persistent connections as configured.
    assert s["DATABASE"]["CONN_MAX_AGE"] == 30 and s["DATABASE"]["OPTIONS"] == {"connect_timeout": 4}
    assert s["EXTRA"] == {
        "FEATURE_FLAGS": {"beta": True, "limit": None, "ratio": 0.25, "names": ["a", "q\"'\\ü 😀"]},
        "EMAIL_HOST": "smtp.example.org",
    }


@pytest.mark.parametrize(
    "overrides",
    [
        {"django_base_settings_module": "bundle_sample.settings; import os"},
        {"django_extra_settings": {"lower_case": 1}},
    ],
    ids=["bad-module", "bad-extra-name"],
)
def test_invalid_names_do_not_compile(render, overrides):
    rendered = render(INVENTORIES[0], overrides)
    with pytest.raises(py_compile.PyCompileError):
        py_compile.compile(str(rendered), doraise=True)
