"""The error answers every API operation can give, written into the OpenAPI schema once
(SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]) rather than on each view: the shapes that
portal.api.exceptions produces, each status where it can happen."""

SAFE_METHODS = {"get", "head", "options"}

ERROR = {
    "type": "object",
    "description": "What went wrong, in words.",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
VALIDATION_ERROR = {
    "type": "object",
    "description": "The request was not acceptable: each offending field (or parameter, or "
    "`detail` for the request as a whole) with what was wrong with it.",
    "additionalProperties": {},
}


def _answer(description: str, schema: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


BAD_REQUEST = _answer("The request or one of its parameters is invalid.", "ValidationError")
UNAUTHENTICATED = _answer("No credentials, or an invalid, expired or revoked token.", "Error")
FORBIDDEN = _answer("The caller's role or token scope does not allow this.", "Error")
NOT_FOUND = _answer("No such object, or not one the caller may see.", "Error")
UNSUPPORTED_MEDIA = _answer("This operation does not read that content type.", "Error")
THROTTLED = {
    **_answer("Too many requests; try again after Retry-After seconds.", "Error"),
    "headers": {
        "Retry-After": {
            "description": "Seconds until the request may be repeated.",
            "schema": {"type": "integer"},
        }
    },
}


def document_errors(result, generator, request, public):
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", ERROR)
    schemas.setdefault("ValidationError", VALIDATION_ERROR)
    for methods in result.get("paths", {}).values():
        for method, operation in methods.items():
            responses = operation.setdefault("responses", {})
            security = operation.get("security", [])
            anonymous = not security or {} in security
            if operation.get("parameters") or "requestBody" in operation:
                responses.setdefault("400", BAD_REQUEST)
            if "requestBody" in operation:
                responses.setdefault("415", UNSUPPORTED_MEDIA)
            if security:
                responses.setdefault("401", UNAUTHENTICATED)
            if method not in SAFE_METHODS or not anonymous:
                responses.setdefault("403", FORBIDDEN)
            if any(p.get("in") == "path" for p in operation.get("parameters", [])):
                responses.setdefault("404", NOT_FOUND)
            responses.setdefault("429", THROTTLED)
    return result
