from django.urls import path

from . import views

urlpatterns = [
    path("c/<str:code>", views.click_redirect, name="click"),
]
