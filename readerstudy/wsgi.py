import os

from django.core.wsgi import get_wsgi_application
from django.urls import resolve

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "readerstudy.settings")
application = get_wsgi_application()

# Load the URL configuration (and with it every view module) when a worker boots, not on its first request.
resolve("/")
