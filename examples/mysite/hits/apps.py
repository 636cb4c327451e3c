from django.apps import AppConfig


class HitsConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'hits'
