from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from portal.models import Job, JobEvent, Membership, Organization, User

admin.site.register(User, UserAdmin)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    inlines = [MembershipInline]


class JobEventInline(admin.TabularInline):
    model = JobEvent
    extra = 0
    readonly_fields = ["from_state", "to_state", "actor", "detail", "created_at"]


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "organization", "kind", "state", "progress", "created_at"]
    list_filter = ["state", "kind"]
    readonly_fields = ["state", "progress", "message"]
    inlines = [JobEventInline]
