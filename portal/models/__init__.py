from portal.models.audit import AuditEvent
from portal.models.jobs import Job, JobEvent
from portal.models.organizations import Invitation, Membership, Organization
from portal.models.ssh_keys import SshKey
from portal.models.tokens import ApiToken
from portal.models.transitions import TransitionEvent
from portal.models.users import User

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Invitation",
    "Job",
    "JobEvent",
    "Membership",
    "Organization",
    "SshKey",
    "TransitionEvent",
    "User",
]
