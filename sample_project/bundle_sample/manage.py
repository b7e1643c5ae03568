"""``manage.py`` of the sample project (``python -m bundle_sample.manage`` or ``bundle-sample-manage``)."""

import os
import sys


def main(argv=None):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bundle_sample.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(argv if argv is not None else sys.argv)


if __name__ == "__main__":
    main()
