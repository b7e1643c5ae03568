"""Tiny stand-ins for django-safemigrate's markings (the package is not required)."""

import enum
from dataclasses import dataclass


class When(enum.Enum):
    """django-safemigrate >= 5 ``When``."""

    ALWAYS = "always"
    BEFORE_DEPLOY = "before_deploy"
    AFTER_DEPLOY = "after_deploy"


@dataclass(frozen=True)
class Safe:
    """django-safemigrate >= 5 ``Safe(when=..., delay=...)``."""

    when: When
    delay: object = None


class LegacySafe(enum.Enum):
    """Older django-safemigrate: ``safe = Safe.after_deploy`` (an enum member)."""

    always = "always"
    before_deploy = "before_deploy"
    after_deploy = "after_deploy"
