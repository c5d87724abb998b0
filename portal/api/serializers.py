from rest_framework import serializers

from portal.models import Job


class JobOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Job
        fields = ["id", "kind", "state", "progress", "message", "created_at", "updated_at"]
        read_only_fields = fields


class JobInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Job.Kind.choices, default=Job.Kind.SELF_CHECK)
