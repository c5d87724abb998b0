"""PostgreSQL network types that Django lacks as fields."""

import ipaddress

from django.core.exceptions import ValidationError
from django.db import models


class CidrField(models.Field):
    """A network prefix stored as PostgreSQL `cidr` (so `&&`, `>>=` and GiST indexes work)."""

    description = "IPv4 or IPv6 network prefix"

    def db_type(self, connection):
        return "cidr"

    def to_python(self, value):
        if value is None or isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
            return value
        try:
            return ipaddress.ip_network(str(value).strip(), strict=True)
        except ValueError as exc:
            raise ValidationError(f"{value!r} is not a network prefix ({exc}).") from exc

    def from_db_value(self, value, expression, connection):
        return None if value is None else ipaddress.ip_network(value)

    def get_prep_value(self, value):
        value = self.to_python(value)
        return None if value is None else str(value)


class InetField(models.Field):
    """A host address stored as PostgreSQL `inet`."""

    description = "IPv4 or IPv6 address"

    def db_type(self, connection):
        return "inet"

    def to_python(self, value):
        if value is None or isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return value
        try:
            return ipaddress.ip_address(str(value).strip().split("/")[0])
        except ValueError as exc:
            raise ValidationError(f"{value!r} is not an IP address ({exc}).") from exc

    def from_db_value(self, value, expression, connection):
        return None if value is None else ipaddress.ip_address(str(value).split("/")[0])

    def get_prep_value(self, value):
        value = self.to_python(value)
        return None if value is None else str(value)
