from rest_framework import serializers

from portal.models import AuditEvent, Job


class JobOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Job
        fields = ["id", "kind", "state", "progress", "message", "created_at", "updated_at"]
        read_only_fields = fields


class JobInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Job.Kind.choices, default=Job.Kind.SELF_CHECK)


class AuditEventOutputSerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="email", read_only=True)

    class Meta:
        model = AuditEvent
        fields = ["id", "created_at", "action", "actor", "target", "detail", "via", "ip_address"]
        read_only_fields = fields
