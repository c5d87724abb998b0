"""The inventory in the operator console. Saves and deletes go through the change log."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse

from fabric import models as m
from fabric.power.credentials import BadReference, reference_check
from fabric.services.agent import node_agent_token_issue
from fabric.services.allocations import allocation_release
from fabric.services.changes import inventory_delete, inventory_save
from fabric.services.power import bmc_set, bmc_verify
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


def _verify_bmcs(modeladmin, request, nodes) -> None:
    actor = Actor.from_request(request, via="admin")
    for node in nodes:
        try:
            result = bmc_verify(node=node, actor=actor)
        except ValidationError as exc:
            modeladmin.message_user(request, " ".join(exc.messages), messages.WARNING)
            continue
        level = messages.SUCCESS if result.serial_matches else messages.WARNING
        modeladmin.message_user(request, f"{node.name}: {result.detail}", level)


class BmcForm(forms.ModelForm):
    """The password is write-only: never shown, and left empty it keeps the one on record."""

    url = forms.URLField(
        max_length=200,
        assume_scheme="https",
        help_text="the Redfish service, e.g. https://10.100.0.7",
    )
    password = forms.CharField(
        required=False,
        strip=False,
        max_length=200,
        widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted and never shown. Leave empty to keep the current one.",
    )

    class Meta:
        model = m.Bmc
        fields = ["node", "driver", "url", "system_id", "username", "password_ref", "verify_tls"]

    def clean(self):
        data = super().clean()
        password, ref = data.get("password"), data.get("password_ref")
        if password and ref:
            self.add_error("password_ref", "Give a password or a reference, not both.")
        elif ref:
            try:
                reference_check(ref)
            except BadReference as exc:
                self.add_error("password_ref", str(exc))
        elif not password and not (self.instance.password_encrypted or self.instance.password_ref):
            self.add_error("password", "A new BMC needs a password or a password reference.")
        return data

    def _post_clean(self):
        # The model's checks see the password as bmc_set will store it (encrypted, there).
        if self.cleaned_data.get("password_ref"):
            self.instance.password_encrypted = ""
        elif self.cleaned_data.get("password"):
            self.instance.password_encrypted = "(encrypted on save)"  # noqa: S105  (a stand-in)
        super()._post_clean()


@admin.register(m.Bmc)
class BmcAdmin(ChangeLoggedAdmin):
    form = BmcForm
    actions = ["verify"]
    list_display = ["node", "url", "system_id", "username", "password_ref", "verified_at"]
    list_select_related = ["node"]
    search_fields = ["node__name", "url"]
    raw_id_fields = ["node"]
    readonly_fields = ["verified_at", "verification"]

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        saved = bmc_set(
            node=data["node"],
            url=data["url"],
            system_id=data.get("system_id", ""),
            username=data["username"],
            password=data.get("password") or None,
            password_ref=data.get("password_ref", ""),
            verify_tls=data.get("verify_tls", True),
            driver=data["driver"],
            actor=self._actor(request),
        )
        obj.pk = saved.pk

    @admin.action(description="Verify BMC (power state and system serial)")
    def verify(self, request, queryset):
        _verify_bmcs(self, request, [bmc.node for bmc in queryset])


@admin.register(m.Node)
class NodeAdmin(ChangeLoggedAdmin):
    actions = ["issue_agent_tokens", "verify_bmc"]
    list_display = ["name", "site", "node_type", "state", "serial", "organization"]
    list_filter = ["site", "state", "node_type"]
    list_select_related = ["site", "organization"]
    search_fields = ["name", "serial"]
    raw_id_fields = ["rack", "organization"]
    readonly_fields = ["state", "agent_token_digest", "last_report_at"]

    @admin.action(description="Verify BMC (power state and system serial)")
    def verify_bmc(self, request, queryset):
        _verify_bmcs(self, request, queryset)

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


for model in (
    m.Prefix,
    m.IPAddress,
    m.NumberPool,
    m.NumberAllocation,
    m.FirewallPolicy,
    m.FirewallRule,
    m.SwitchPort,
):
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
