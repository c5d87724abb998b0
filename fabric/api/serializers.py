"""Serializers for the inventory API. One per kind: inventory rows are flat records whose input
and output shapes match; references are by natural key (site name, node name, ...). And what a
tenant sees of its capacity (allocations, reservations, quotas), which catalog's capacity API
extends with what each costs."""

from django.db.backends.postgresql.psycopg_any import NumericRange
from rest_framework import serializers

from fabric import models as m
from fabric.power.credentials import BadReference, reference_check


class _Inventory(serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        m.fields.CidrField: serializers.CharField,
        m.fields.InetField: serializers.IPAddressField,
    }

    def to_representation(self, instance):
        data = super().to_representation(instance)
        for name, value in data.items():
            if value is not None and not isinstance(value, str | int | float | bool | list | dict):
                data[name] = str(value)
        return data


def _ref(model, slug_field="name", **kwargs):
    return serializers.SlugRelatedField(
        slug_field=slug_field, queryset=model.objects.all(), **kwargs
    )


class SiteSerializer(_Inventory):
    class Meta:
        model = m.Site
        fields = ["id", "name", "region", "description"]


class PodSerializer(_Inventory):
    site = _ref(m.Site)

    class Meta:
        model = m.Pod
        fields = ["id", "site", "name"]


class RackSerializer(_Inventory):
    site = _ref(m.Site)

    class Meta:
        model = m.Rack
        fields = ["id", "site", "pod", "name", "u_height"]


class NodeSerializer(_Inventory):
    site = _ref(m.Site)
    rack_name = serializers.CharField(source="rack.name", read_only=True, default=None)

    class Meta:
        model = m.Node
        fields = [
            "id",
            "name",
            "serial",
            "vendor",
            "model",
            "node_type",
            "role",
            "gpu_model",
            "cpu_model",
            "cpu_cores",
            "memory_gb",
            "site",
            "rack",
            "rack_name",
            "rack_position",
            "rack_units",
            "bmc_address",
            "state",
            "organization",
            "last_report_at",
        ]
        read_only_fields = ["state", "organization", "last_report_at"]


class TenantNodeSerializer(NodeSerializer):
    """What a tenant sees of a node allocated to it: no BMC, no rack internals."""

    class Meta(NodeSerializer.Meta):
        fields = [
            "id",
            "name",
            "node_type",
            "gpu_model",
            "cpu_model",
            "cpu_cores",
            "memory_gb",
            "site",
            "state",
        ]
        read_only_fields = fields


class BmcSerializer(_Inventory):
    """A node's BMC. The password is write-only: give `password` (stored encrypted) or
    `password_ref` (`env:VARIABLE`, `file:/path`, read at each use); leave both out of an
    update to keep the one on record. `password_stored` says whether one is stored."""

    node = _ref(m.Node)
    password = serializers.CharField(
        write_only=True,
        required=False,
        max_length=200,
        trim_whitespace=False,
        style={"input_type": "password"},
    )
    password_ref = serializers.CharField(required=False, allow_blank=True, max_length=200)
    password_stored = serializers.SerializerMethodField()

    class Meta:
        model = m.Bmc
        fields = [
            "id",
            "node",
            "driver",
            "url",
            "system_id",
            "username",
            "password",
            "password_ref",
            "password_stored",
            "verify_tls",
            "verified_at",
            "verification",
        ]
        read_only_fields = ["verified_at", "verification"]

    def get_password_stored(self, bmc) -> bool:
        return bool(bmc.password_encrypted)

    def validate_password_ref(self, value: str) -> str:
        if value:
            try:
                reference_check(value)
            except BadReference as exc:
                raise serializers.ValidationError(str(exc)) from None
        return value

    def validate(self, attrs):
        if attrs.get("password") and attrs.get("password_ref"):
            raise serializers.ValidationError(
                {"password_ref": "Give a password or a reference, not both."}
            )
        if (
            self.instance is not None
            and attrs.get("node", self.instance.node) != self.instance.node
        ):
            raise serializers.ValidationError({"node": "A BMC stays with its node."})
        return attrs


class BmcVerificationSerializer(serializers.Serializer):
    node = serializers.CharField()
    reachable = serializers.BooleanField()
    power_state = serializers.CharField()
    serial_expected = serializers.CharField()
    serial_reported = serializers.CharField()
    serial_matches = serializers.BooleanField(allow_null=True)
    detail = serializers.CharField()


class GPUSerializer(_Inventory):
    node = _ref(m.Node)

    class Meta:
        model = m.GPU
        fields = [
            "id",
            "node",
            "index",
            "uuid",
            "serial",
            "model",
            "memory_mb",
            "pci_bus_id",
            "numa_node",
            "nvlink_domain",
            "mig_capable",
            "health",
        ]


class NetworkInterfaceSerializer(_Inventory):
    node = _ref(m.Node)

    class Meta:
        model = m.NetworkInterface
        fields = [
            "id",
            "node",
            "name",
            "mac",
            "speed_gbps",
            "kind",
            "ib_guid",
            "rail",
            "nearest_gpu",
        ]


class SwitchSerializer(_Inventory):
    site = _ref(m.Site)

    class Meta:
        model = m.Switch
        fields = [
            "id",
            "name",
            "site",
            "pod",
            "rack",
            "rack_position",
            "rack_units",
            "vendor",
            "model",
            "serial",
            "platform",
            "os_version",
            "management_address",
            "role",
            "rail",
        ]


class SwitchPortSerializer(_Inventory):
    switch = _ref(m.Switch)

    class Meta:
        model = m.SwitchPort
        fields = ["id", "switch", "name", "speed_gbps", "description"]


class CableEndSerializer(serializers.ModelSerializer):
    class Meta:
        model = m.CableEnd
        fields = ["side", "interface", "port"]


class CableSerializer(_Inventory):
    ends = CableEndSerializer(many=True, read_only=True)

    class Meta:
        model = m.Cable
        fields = ["id", "label", "kind", "length_m", "ends"]


class PrefixSerializer(_Inventory):
    class Meta:
        model = m.Prefix
        fields = ["id", "site", "vrf", "prefix", "role", "is_pool", "description"]


class IPAddressSerializer(_Inventory):
    class Meta:
        model = m.IPAddress
        fields = ["id", "prefix", "address", "interface", "organization", "description"]


class NumberPoolSerializer(_Inventory):
    first = serializers.IntegerField(source="values.lower")
    last = serializers.SerializerMethodField()

    class Meta:
        model = m.NumberPool
        fields = ["id", "site", "kind", "name", "first", "last"]

    def get_last(self, pool) -> int:
        return pool.values.upper - 1

    def to_internal_value(self, data):
        values = super().to_internal_value(data)
        first = values.pop("values")["lower"]
        try:
            last = int(data.get("last"))
        except (TypeError, ValueError):
            raise serializers.ValidationError({"last": "A whole number is required."}) from None
        if last < first:
            raise serializers.ValidationError({"last": "last must not be below first."})
        values["values"] = NumericRange(first, last + 1)
        return values


class NumberAllocationSerializer(_Inventory):
    class Meta:
        model = m.NumberAllocation
        fields = ["id", "pool", "site", "kind", "value", "organization", "purpose"]
        read_only_fields = ["site", "kind"]


class FirewallRuleSerializer(_Inventory):
    class Meta:
        model = m.FirewallRule
        fields = [
            "id",
            "policy",
            "position",
            "action",
            "direction",
            "protocol",
            "source",
            "destination",
            "port_min",
            "port_max",
            "description",
        ]


class FirewallPolicySerializer(_Inventory):
    class Meta:
        model = m.FirewallPolicy
        fields = ["id", "name", "organization", "description", "default_action"]


class ChangeRecordSerializer(serializers.ModelSerializer):
    kind = serializers.CharField(source="content_type.model", read_only=True)
    actor = serializers.SlugRelatedField(slug_field="email", read_only=True)

    class Meta:
        model = m.ChangeRecord
        fields = [
            "id",
            "created_at",
            "kind",
            "object_id",
            "object_repr",
            "action",
            "actor",
            "via",
            "ip_address",
            "before",
            "after",
        ]
        read_only_fields = fields


# Capacity, read only. No docstrings: drf-spectacular would describe catalog's subclasses with them.


class AllocationSerializer(serializers.ModelSerializer):
    class Meta:
        model = m.Allocation
        fields = [
            "id",
            "shape",
            "gpu_model",
            "count",
            "slice_profile",
            "topology",
            "topology_required",
            "state",
            "starts_at",
            "ends_at",
            "queue_position",
            "estimated_start",
            "detail",
            "created_at",
        ]
        read_only_fields = fields


class ReservationSerializer(serializers.ModelSerializer):
    gpu_hours = serializers.FloatField(read_only=True)

    class Meta:
        model = m.Reservation
        fields = [
            "id",
            "gpu_model",
            "count",
            "starts_at",
            "ends_at",
            "weekly_occurrences",
            "state",
            "gpu_hours",
            "created_at",
        ]
        read_only_fields = fields


class QuotaSerializer(serializers.ModelSerializer):
    class Meta:
        model = m.Quota
        fields = ["gpu_model", "max_gpus", "gpu_hours_per_month"]
        read_only_fields = fields
