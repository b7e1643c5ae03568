import os

from django.contrib.auth import get_user_model

User = get_user_model()
username = os.environ["BUNDLE_DEMO_USERNAME"]
password = os.environ["BUNDLE_DEMO_PASSWORD"]
user, changed = User.objects.get_or_create(
    **{User.USERNAME_FIELD: username},
    defaults={"email": os.environ.get("BUNDLE_DEMO_EMAIL", "")},
)
if not user.check_password(password):
    user.set_password(password)
    changed = True
for flag in ("is_active", "is_staff", "is_superuser"):
    if not getattr(user, flag):
        setattr(user, flag, True)
        changed = True
if changed:
    user.save()
print("DEMO-SUPERUSER-CHANGED" if changed else "DEMO-SUPERUSER-UNCHANGED")
