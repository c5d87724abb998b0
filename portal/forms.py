"""Input validation for the portal's pages; the work happens in services."""

from django import forms

from portal.models import ApiToken, Membership


class OrganizationForm(forms.Form):
    name = forms.CharField(max_length=120)


class InvitationForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=80)
    scope = forms.ChoiceField(choices=ApiToken.Scope.choices, initial=ApiToken.Scope.READ)
    expires_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Leave empty for a token that does not expire.",
    )


class SshKeyForm(forms.Form):
    name = forms.CharField(max_length=80, required=False)
    public_key = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))
