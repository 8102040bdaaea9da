"""lab-app settings: state under /var/lib/lab-app (owned by www-data), nothing secret."""
SECRET_KEY = "lab-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth",
                  "django.contrib.staticfiles", "labapp"]
ROOT_URLCONF = "labapp.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3",
                         "NAME": "/var/lib/lab-app/db.sqlite3"}}
STATIC_URL = "/static/"
STATIC_ROOT = "/var/lib/lab-app/static"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
