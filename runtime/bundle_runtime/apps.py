"""App config: wires the runtime into Django and Channels at startup."""

from django.apps import AppConfig


class BundleRuntimeConfig(AppConfig):
    name = "bundle_runtime"
    verbose_name = "Deployment bundle runtime"
    default = True

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from bundle_runtime import channels_auth, tenants

        user_logged_in.connect(tenants.bind_session_to_tenant, dispatch_uid="bundle_runtime.tenant_on_login")
        # channels.auth.AuthMiddleware.resolve_scope() looks up the module-level
        # name ``get_user`` at call time, so rebinding it here makes every
        # project that uses the plain ``channels.auth.AuthMiddlewareStack``
        # verify SECRET_KEY_FALLBACKS and tenants like Django's HTTP side does.
        channels_auth.install()
