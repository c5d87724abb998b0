"""One pagination for every list in the API: `limit` and `offset`, both bounded, and a 400 that
names the parameter when either is not a whole number in range (instead of DRF's silent
fallback, or a database error when a number overflows PostgreSQL's bigint)."""

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    max_limit = 500
    # Deep offsets make PostgreSQL walk every skipped row; nothing we list is this long.
    max_offset = 10_000_000

    def get_limit(self, request):
        return self._bounded(request, self.limit_query_param, self.default_limit, 1, self.max_limit)

    def get_offset(self, request):
        return self._bounded(request, self.offset_query_param, 0, 0, self.max_offset)

    @staticmethod
    def _bounded(request, name: str, default: int, low: int, high: int) -> int:
        raw = request.query_params.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw.strip())
        except ValueError:
            message = f"Must be a whole number from {low} to {high}."
            raise ValidationError({name: [message]}) from None
        if not low <= value <= high:
            raise ValidationError({name: [f"Must be from {low} to {high}; got {value}."]})
        return value

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        bounds = {
            self.limit_query_param: {"minimum": 1, "maximum": self.max_limit},
            self.offset_query_param: {"minimum": 0, "maximum": self.max_offset},
        }
        for parameter in parameters:
            parameter["schema"].update(bounds.get(parameter["name"], {}))
        return parameters
