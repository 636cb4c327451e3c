from django.db import models


class Hit(models.Model):
    """One request that reached the database."""

    created = models.DateTimeField(auto_now_add=True)
    path = models.CharField(max_length=200)
