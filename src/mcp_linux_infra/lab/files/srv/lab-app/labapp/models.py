from django.db import models


class Visit(models.Model):
    """One table, so that `migrate` has real work on a fresh target."""

    at = models.DateTimeField(auto_now_add=True)
