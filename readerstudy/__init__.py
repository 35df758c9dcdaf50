"""readerstudy: blinded, multi-site reader studies of MRI image enhancement."""

from readerstudy.celery import app as celery_app

__all__ = ["celery_app"]
