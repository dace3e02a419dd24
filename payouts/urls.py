from django.urls import path

from . import views

urlpatterns = [
    path("payouts/<int:payout_id>/statement/", views.statement, name="payout-statement"),
    path("payouts/<int:payout_id>/invoice.pdf", views.invoice, name="payout-invoice"),
]
