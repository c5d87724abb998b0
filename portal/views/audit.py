from django.core.paginator import Paginator
from django.shortcuts import render

from portal import selectors
from portal.decorators import membership_required
from portal.permissions import Permission


@membership_required(Permission.READ_AUDIT)
def audit_log(request):
    page = Paginator(selectors.audit_list(membership=request.membership), 50).get_page(
        request.GET.get("page")
    )
    return render(request, "portal/audit.html", {"page": page})
