"""The inventory in the operator console. Saves and deletes go through the change log."""

from django.contrib import admin
from django.template.response import TemplateResponse

from fabric import models as m
from fabric.services.agent import node_agent_token_issue
from fabric.services.allocations import allocation_release
from fabric.services.changes import inventory_delete, inventory_save
from portal.services.audit import Actor


class ChangeLoggedAdmin(admin.ModelAdmin):
    list_per_page = 100

    def _actor(self, request) -> Actor:
        return Actor.from_request(request, via="admin")

    def save_model(self, request, obj, form, change):
        inventory_save(obj=obj, actor=self._actor(request))

    def delete_model(self, request, obj):
        inventory_delete(obj=obj, actor=self._actor(request))

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            inventory_delete(obj=obj, actor=self._actor(request))


@admin.register(m.Site)
class SiteAdmin(ChangeLoggedAdmin):
    list_display = ["name", "region"]
    search_fields = ["name"]


@admin.register(m.Pod)
class PodAdmin(ChangeLoggedAdmin):
    list_display = ["name", "site"]
    list_select_related = ["site"]


@admin.register(m.Rack)
class RackAdmin(ChangeLoggedAdmin):
    list_display = ["name", "site", "pod", "u_height"]
    list_filter = ["site"]
    list_select_related = ["site", "pod"]
    search_fields = ["name"]


@admin.register(m.Node)
class NodeAdmin(ChangeLoggedAdmin):
    actions = ["issue_agent_tokens"]
    list_display = ["name", "site", "node_type", "state", "serial", "organization"]
    list_filter = ["site", "state", "node_type"]
    list_select_related = ["site", "organization"]
    search_fields = ["name", "serial"]
    raw_id_fields = ["rack", "organization"]
    readonly_fields = ["state", "agent_token_digest", "last_report_at"]

    @admin.action(description="Issue agent tokens (replaces existing ones; shown once)")
    def issue_agent_tokens(self, request, queryset):
        actor = self._actor(request)
        tokens = [(node, node_agent_token_issue(node=node, actor=actor)) for node in queryset]
        return TemplateResponse(
            request,
            "fabric/agent_tokens.html",
            {**self.admin_site.each_context(request), "tokens": tokens, "title": "Agent tokens"},
        )


@admin.register(m.GPU)
class GPUAdmin(ChangeLoggedAdmin):
    list_display = ["uuid", "node", "index", "model", "health"]
    list_filter = ["model", "health"]
    list_select_related = ["node"]
    search_fields = ["uuid", "serial", "node__name"]
    raw_id_fields = ["node"]


@admin.register(m.NetworkInterface)
class NetworkInterfaceAdmin(ChangeLoggedAdmin):
    list_display = ["mac", "node", "name", "kind", "speed_gbps", "rail"]
    list_filter = ["kind"]
    list_select_related = ["node"]
    search_fields = ["mac", "ib_guid", "node__name"]
    raw_id_fields = ["node", "nearest_gpu"]


@admin.register(m.Switch)
class SwitchAdmin(ChangeLoggedAdmin):
    list_display = ["name", "site", "role", "platform", "rail", "management_address"]
    list_filter = ["site", "role", "platform"]
    list_select_related = ["site"]
    search_fields = ["name", "serial"]
    raw_id_fields = ["rack", "pod"]


@admin.register(m.Cable)
class CableAdmin(ChangeLoggedAdmin):
    list_display = ["label", "kind"]
    search_fields = ["label"]


for model in (m.Prefix, m.IPAddress, m.NumberPool, m.NumberAllocation, m.FirewallPolicy,
              m.FirewallRule, m.SwitchPort):  # fmt: skip
    admin.site.register(model, ChangeLoggedAdmin)


@admin.register(m.ChangeRecord)
class ChangeRecordAdmin(admin.ModelAdmin):
    list_display = ["created_at", "content_type", "object_repr", "action", "actor", "via"]
    list_filter = ["action", "via", "content_type"]
    list_select_related = ["content_type", "actor"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(m.Quota)
class QuotaAdmin(admin.ModelAdmin):
    list_display = ["organization", "gpu_model", "max_gpus", "gpu_hours_per_month"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]


class AllocationEventInline(admin.TabularInline):
    model = m.AllocationEvent
    extra = 0
    readonly_fields = ["from_state", "to_state", "actor", "detail", "created_at"]
    can_delete = False


@admin.register(m.Allocation)
class AllocationAdmin(admin.ModelAdmin):
    """Read-only: allocations change through their lifecycle, never by hand."""

    list_display = [
        "id",
        "organization",
        "shape",
        "gpu_model",
        "count",
        "state",
        "starts_at",
        "ends_at",
    ]
    list_filter = ["state", "shape", "gpu_model"]
    list_select_related = ["organization"]
    inlines = [AllocationEventInline]
    actions = ["release"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Release now (the capacity returns to the pool)")
    def release(self, request, queryset):
        actor = Actor.from_request(request, via="admin")
        for allocation in queryset:
            allocation_release(allocation=allocation, actor=actor, reason="released by an operator")


@admin.register(m.Reservation)
class ReservationAdmin(admin.ModelAdmin):
    list_display = [
        "organization",
        "gpu_model",
        "count",
        "starts_at",
        "ends_at",
        "weekly_occurrences",
        "state",
    ]
    list_filter = ["state", "gpu_model"]
    list_select_related = ["organization"]

    def has_change_permission(self, request, obj=None):
        return False
