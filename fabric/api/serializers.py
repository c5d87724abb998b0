"""Serializers for the inventory API. One per kind: inventory rows are flat records whose input
and output shapes match; references are by natural key (site name, node name, ...)."""

from django.db.backends.postgresql.psycopg_any import NumericRange
from rest_framework import serializers

from fabric import models as m


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
            "id", "name", "serial", "vendor", "model", "node_type", "gpu_model", "cpu_model",
            "cpu_cores", "memory_gb", "site", "rack", "rack_name", "rack_position", "rack_units",
            "bmc_address", "bmc_credentials_ref", "state", "organization", "last_report_at",
        ]  # fmt: skip
        read_only_fields = ["state", "organization", "last_report_at"]


class TenantNodeSerializer(NodeSerializer):
    """What a tenant sees of a node allocated to it: no BMC, no rack internals."""

    class Meta(NodeSerializer.Meta):
        fields = ["id", "name", "node_type", "gpu_model", "cpu_model", "cpu_cores", "memory_gb",
                  "site", "state"]  # fmt: skip
        read_only_fields = fields


class GPUSerializer(_Inventory):
    node = _ref(m.Node)

    class Meta:
        model = m.GPU
        fields = [
            "id", "node", "index", "uuid", "serial", "model", "memory_mb", "pci_bus_id",
            "numa_node", "nvlink_domain", "mig_capable", "health",
        ]  # fmt: skip


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
            "id", "name", "site", "pod", "rack", "rack_position", "rack_units", "vendor", "model",
            "serial", "platform", "os_version", "management_address", "role", "rail",
        ]  # fmt: skip


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
            "id", "policy", "position", "action", "direction", "protocol", "source",
            "destination", "port_min", "port_max", "description",
        ]  # fmt: skip


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
            "id", "created_at", "kind", "object_id", "object_repr", "action", "actor", "via",
            "ip_address", "before", "after",
        ]  # fmt: skip
        read_only_fields = fields
