from django.urls import path

from hits import views

urlpatterns = [
    path("", views.index, name="index"),
    path("hits/", views.hits, name="hits"),
    path("db/sleep/", views.sleep, name="sleep"),
    path("page/", views.page, name="page"),
]
