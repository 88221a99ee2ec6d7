from django.urls import path

from inbox import views

urlpatterns = [
    path("", views.home, name="home"),
    path("text-me/", views.web_form_opt_in, name="web-form-opt-in"),
    path("leads/<int:lead_id>/", views.thread, name="inbox-thread"),
    path("leads/<int:lead_id>/reply/", views.reply, name="inbox-reply"),
    path("leads/<int:lead_id>/claim/", views.claim, name="inbox-claim"),
    path("leads/<int:lead_id>/transfer/", views.transfer, name="inbox-transfer"),
    path("leads/<int:lead_id>/outcome/", views.outcome, name="inbox-outcome"),
    path("leads/<int:lead_id>/appointment.ics", views.appointment_ics, name="inbox-appointment-ics"),
    path("leads/<int:lead_id>/note/", views.note, name="inbox-note"),
    path("leads/<int:lead_id>/details/", views.details, name="inbox-details"),
    path("leads/<int:lead_id>/call-back/", views.call_back, name="inbox-call-back"),
    path("leads/<int:lead_id>/call-back/done/", views.call_back_done, name="inbox-call-back-done"),
    path("leads/<int:lead_id>/consent/", views.consent, name="inbox-consent"),
    path("leads/<int:lead_id>/revocation/", views.revocation, name="inbox-revocation"),
    path("me/duty/", views.duty, name="inbox-duty"),
    path("reports/fairness/", views.fairness_report, name="fairness-report"),
    path("reports/dashboard/", views.dashboard, name="dashboard"),
    path("reports/dashboard/leads/", views.dashboard_leads, name="dashboard-leads"),
]
