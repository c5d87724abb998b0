from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from billing.urls_invoices import operator_urlpatterns as billing_operator_patterns
from catalog import views_notebooks
from catalog.urls_orders import metadata_urlpatterns
from portal.health import healthz
from portal.views import audit, jobs, organizations, ssh_keys, tokens

portal_patterns = [
    path("", jobs.home, name="home"),
    path("dashboard/", jobs.dashboard, name="dashboard"),
    path("jobs/", jobs.job_create, name="job_create"),
    path("jobs/<int:job_id>/", jobs.job_detail, name="job_detail"),
    path("organizations/new/", organizations.organization_create, name="organization_create"),
    path("organizations/switch/", organizations.organization_switch, name="organization_switch"),
    path("organization/members/", organizations.member_list, name="members"),
    path(
        "organization/members/<int:member_id>/role/", organizations.member_role, name="member_role"
    ),
    path(
        "organization/members/<int:member_id>/remove/",
        organizations.member_remove,
        name="member_remove",
    ),
    path(
        "organization/invitations/<int:invitation_id>/revoke/",
        organizations.invitation_revoke,
        name="invitation_revoke",
    ),
    path("invitations/<str:token>/", organizations.invitation_respond, name="invitation"),
    path("organization/tokens/", tokens.token_list, name="tokens"),
    path("organization/tokens/<int:token_id>/revoke/", tokens.token_revoke, name="token_revoke"),
    path("organization/audit/", audit.audit_log, name="audit"),
    path("account/ssh-keys/", ssh_keys.ssh_key_list, name="ssh_keys"),
    path("account/ssh-keys/<int:key_id>/delete/", ssh_keys.ssh_key_delete, name="ssh_key_delete"),
]

urlpatterns = [
    path("", include((portal_patterns, "portal"))),
    path("accounts/", include("allauth.urls")),
    path("billing/", include("billing.urls")),
    path("billing/", include("billing.urls_invoices")),
    path("operator/revenue/", include((billing_operator_patterns, "billing_operator"))),
    path("capacity/", include("catalog.urls")),
    path("orders/", include("catalog.urls_orders")),
    path("courses/", include("courses.urls")),
    path("inference/", include("catalog.urls_inference")),
    path("metadata/", include((metadata_urlpatterns, "metadata"))),
    path("operator/inventory/", include("fabric.urls_spreadsheets")),
    path("operator/", include("fabric.urls")),
    path("oauth/userinfo/", views_notebooks.userinfo, name="oauth-userinfo"),
    path("oauth/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("api/v1/notebooks/admission/", views_notebooks.admission, name="notebook-admission"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include("portal.api.urls")),
    path("api/v1/", include("catalog.api.urls")),
    path("api/v1/", include("fabric.api.agent_urls")),
    path("api/v1/", include("fabric.api.urls")),
]
