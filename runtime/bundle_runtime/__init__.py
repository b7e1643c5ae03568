"""Runtime support installed by the deployment bundle next to every Django project.

* :mod:`bundle_runtime.channels_auth` -- WebSocket authentication that honours
  ``SECRET_KEY_FALLBACKS`` (and the per-host tenant binding), installed into
  ``channels.auth`` by :class:`bundle_runtime.apps.BundleRuntimeConfig`.
* :mod:`bundle_runtime.tenants` -- tenant resolved from the request host
  (``BUNDLE_TENANTS``), session binding, cache key function.

The rendered deploy settings add ``bundle_runtime`` to ``INSTALLED_APPS`` and
its middleware; projects do not need to reference it themselves.
"""

