from django.contrib import admin

from billing.models import Card, CreditGrant, StripeCustomer, WebhookEvent
from billing.services.credits import credit_grant
from portal.models import AuditEvent
from portal.services.audit import Actor


@admin.register(CreditGrant)
class CreditGrantAdmin(admin.ModelAdmin):
    """Operators grant prepaid credit here; a grant is never edited, only added."""

    list_display = ["organization", "amount", "currency", "expires_at", "note", "granted_by"]
    list_filter = ["currency"]
    search_fields = ["organization__name", "note"]
    fields = ["organization", "amount", "expires_at", "note"]
    autocomplete_fields = ["organization"]

    def has_change_permission(self, request, obj=None):
        return obj is None

    def save_model(self, request, obj, form, change):
        grant = credit_grant(
            organization=obj.organization,
            amount=obj.amount,
            expires_at=obj.expires_at,
            note=obj.note,
            actor=Actor.from_request(request, via=AuditEvent.Via.ADMIN),
        )
        obj.pk = grant.pk


@admin.register(StripeCustomer)
class StripeCustomerAdmin(admin.ModelAdmin):
    list_display = ["organization", "stripe_id", "created_at"]
    readonly_fields = ["organization", "stripe_id", "created_at"]


@admin.register(Card)
class CardAdmin(admin.ModelAdmin):
    list_display = ["organization", "brand", "last4", "exp_month", "exp_year", "is_default"]
    readonly_fields = [f.name for f in Card._meta.fields]


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ["stripe_event_id", "type", "received_at", "processed_at"]
    list_filter = ["type"]
    readonly_fields = [f.name for f in WebhookEvent._meta.fields]
