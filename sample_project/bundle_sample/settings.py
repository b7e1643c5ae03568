"""Base settings of the sample project.

Usable standalone (tests, ``runserver``): SQLite, local-memory cache and the
in-memory channel layer. In a deployment the bundle renders a settings module
that does ``from bundle_sample.settings import *`` and replaces the
infrastructure (database, caches, sessions, channel layer, secrets, hosts,
cookies, logging); nothing here needs to know about it.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
STATE_DIR = Path(os.environ.get("BUNDLE_SAMPLE_STATE_DIR", Path.cwd()))

# Development-only defaults; the deploy settings always override them.
SECRET_KEY = os.environ.get("BUNDLE_SAMPLE_SECRET_KEY", "insecure-sample-key-for-local-use-only")
DEBUG = os.environ.get("BUNDLE_SAMPLE_DEBUG", "0") == "1"
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "bundle_sample.moderation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "bundle_sample.urls"
ASGI_APPLICATION = "bundle_sample.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": STATE_DIR / "bundle-sample.sqlite3",
    }
}

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/private/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Shown by /healthz; the deploy settings set the real release id.
BUNDLE_RELEASE_ID = os.environ.get("BUNDLE_RELEASE_ID", "dev")

if os.environ.get("BUNDLE_SAMPLE_TEST") == "1":
    # Own test suite: in-memory database, fast hashing.
    DATABASES["default"]["NAME"] = ":memory:"
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
