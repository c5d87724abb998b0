from django.urls import path

from fabric.api.agent import AgentReportView

urlpatterns = [
    path("agent/report/", AgentReportView.as_view(), name="agent-report"),
]
