from django.urls import path

from apps.accounts import views

urlpatterns = [path("", views.home, name="home")]
