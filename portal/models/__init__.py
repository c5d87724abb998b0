from portal.models.jobs import Job, JobEvent
from portal.models.organizations import Membership, Organization
from portal.models.users import User

__all__ = ["Job", "JobEvent", "Membership", "Organization", "User"]
