"""Minimal project for the runtime's own tests (two tenants on two hosts)."""

SECRET_KEY = "runtime-tests-current-key"
SECRET_KEY_FALLBACKS = []
DEBUG = False
ALLOWED_HOSTS = ["alpha.example", "beta.example", "plain.example", "testserver"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "bundle_runtime",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "bundle_runtime.tenants.TenantMiddleware",
]
ROOT_URLCONF = "tests.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "KEY_FUNCTION": "bundle_runtime.tenants.make_key",
    },
    # Like the deploy settings: sessions get their own alias, never tenant-keyed
    # (the session is saved after TenantMiddleware has returned).
    "sessions": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "sessions"},
}
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_CACHE_ALIAS = "sessions"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
BUNDLE_TENANTS = {"alpha.example": "alpha", "Beta.Example": "beta"}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
