"""POST /api/v1/agent/report/: a node agent reports its hardware (see docs/agent.md)."""

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import authentication, exceptions, permissions, serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from fabric.models import Drift, Node
from fabric.services.agent import node_authenticate_agent, node_report_ingest


class NodeTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Node sfn_…`: the request speaks for that node (request.auth)."""

    keyword = "Node"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode(errors="replace").lower() != self.keyword.lower():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization: Node <token> expected.")
        node = node_authenticate_agent(header[1].decode(errors="replace"))
        if node is None:
            raise exceptions.AuthenticationFailed("Invalid node token.")
        return AnonymousUser(), node

    def authenticate_header(self, request):
        return self.keyword


class NodeTokenScheme(OpenApiAuthenticationExtension):
    target_class = "fabric.api.agent.NodeTokenAuthentication"
    name = "nodeAgentAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Node <token>`: the node's agent token, issued by an operator.",
        }


class IsNodeAgent(permissions.BasePermission):
    def has_permission(self, request, view):
        return isinstance(request.auth, Node)


class DriftOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Drift
        fields = ["kind", "subject", "expected", "observed", "first_seen", "last_seen"]


class ReportOutputSerializer(serializers.Serializer):
    drift = DriftOutputSerializer(many=True)


class AgentReportView(APIView):
    authentication_classes = [NodeTokenAuthentication]
    permission_classes = [IsNodeAgent]
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="agent_report",
        summary="A node agent reports its GPUs and NICs",
        description="The body is the agent's report (docs/agent.md). The answer lists the drift "
        "between the report and the inventory that is open after it.",
        request=OpenApiTypes.OBJECT,
        responses={
            201: ReportOutputSerializer,
            400: OpenApiResponse(description="A malformed report; each bad field is named."),
            401: OpenApiResponse(description="A missing or invalid node token."),
        },
        tags=["agent"],
    )
    def post(self, request):
        drift = node_report_ingest(node=request.auth, payload=request.data)
        return Response(
            ReportOutputSerializer({"drift": drift}).data, status=status.HTTP_201_CREATED
        )
