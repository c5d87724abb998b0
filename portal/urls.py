from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from billing import urls as billing_urls
from catalog import urls as catalog_urls
from catalog.views import storefront
from fabric import urls as fabric_urls
from portal.health import healthz
from portal.views import audit, jobs, organizations, ssh_keys, tokens

portal_patterns = [
    path("", storefront.home, name="home"),
    path("dashboard/", storefront.dashboard, name="dashboard"),
    path("jobs/", jobs.job_create, name="job_create"),
    path("jobs/<int:job_id>/", jobs.job_detail, name="job_detail"),
    path("operator/jobs/", jobs.operator_jobs, name="operator_jobs"),
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
    path("billing/", include((billing_urls.billing_patterns, "billing"))),
    path("billing/", include((billing_urls.invoice_patterns, "invoices"))),
    path("operator/revenue/", include((billing_urls.revenue_patterns, "billing_operator"))),
    path("capacity/", include((catalog_urls.capacity_patterns, "catalog"))),
    path("orders/", include((catalog_urls.order_patterns, "orders"))),
    path("courses/", include("courses.urls")),
    path("inference/", include((catalog_urls.inference_patterns, "inference"))),
    path("metadata/", include((catalog_urls.metadata_patterns, "metadata"))),
    path("provisioning/", include((fabric_urls.provisioning_patterns, "provisioning"))),
    path("operator/inventory/", include((fabric_urls.spreadsheet_patterns, "inventory_io"))),
    path("operator/", include((fabric_urls.inventory_patterns, "fabric"))),
    *catalog_urls.hub_patterns,  # before oauth2_provider's own userinfo
    path("oauth/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include("portal.api.urls")),
    path("api/v1/", include("catalog.api.urls")),
    path("api/v1/", include("fabric.api.agent_urls")),
    path("api/v1/", include("fabric.api.urls")),
]

# Errors Django answers itself (an unknown URL, a failure outside a DRF view) are JSON under
# /api/ like every other API error, and the usual pages elsewhere.
handler400 = "portal.api.errors.bad_request"
handler403 = "portal.api.errors.permission_denied"
handler404 = "portal.api.errors.page_not_found"
handler500 = "portal.api.errors.server_error"
