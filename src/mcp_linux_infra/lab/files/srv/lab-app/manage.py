#!/usr/bin/env python3
"""lab-app: a small Django project, so that django_manage actions have something real to do."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labapp.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
