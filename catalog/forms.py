from django import forms
from django.core.exceptions import ValidationError

from portal.services.ssh_keys import ssh_key_parse


class ReservationForm(forms.Form):
    gpu_model = forms.ChoiceField(label="GPU model", choices=())
    count = forms.IntegerField(min_value=1, max_value=4096, initial=8)
    starts_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    ends_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    weekly_occurrences = forms.IntegerField(min_value=1, max_value=52, initial=1)

    def __init__(self, *args, gpu_models: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["gpu_model"].choices = [(m, m) for m in gpu_models]


class BareMetalOrderForm(forms.Form):
    """Bare metal: the servers (model, how many, where) and the SSH keys they take: some of the
    orderer's keys (all by default) and/or one added here, saved once the order validates."""

    gpu_model = forms.ChoiceField(label="GPU model", choices=())
    nodes = forms.IntegerField(label="Servers", min_value=1, max_value=64, initial=1)
    topology = forms.ChoiceField(label="Placement", choices=())
    site = forms.ChoiceField(label="Site", choices=(), required=False)
    ssh_keys = forms.MultipleChoiceField(
        label="SSH keys for the servers",
        choices=(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    new_key = forms.CharField(
        label="Add an SSH key",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "ssh-ed25519 AAAA... you@laptop"}),
        help_text="Your public key (one line); it is saved to your account with the order.",
    )
    new_key_name = forms.CharField(label="Key name", required=False, max_length=80)

    def __init__(self, *args, gpu_models: list[str], topologies, sites=(), keys=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["gpu_model"].choices = [(m, m) for m in gpu_models]
        self.fields["topology"].choices = topologies
        self.fields["topology"].initial = "any"
        self.fields["site"].choices = [("", "Any site"), *sites]
        self.fields["ssh_keys"].choices = list(keys)
        self.fields["ssh_keys"].initial = [fingerprint for fingerprint, _ in keys]
        self.new_key_fingerprint = ""

    def clean_new_key(self) -> str:
        text = self.cleaned_data["new_key"].strip()
        if text:
            try:
                _, text, _, self.new_key_fingerprint = ssh_key_parse(text)
            except ValidationError as error:
                raise ValidationError(error.message_dict["public_key"]) from error
        return text

    def clean(self):
        cleaned = super().clean()
        if (
            not cleaned.get("ssh_keys")
            and not cleaned.get("new_key")
            and "new_key" not in self.errors
        ):
            if self.fields["ssh_keys"].choices:
                self.add_error("ssh_keys", "Choose at least one of your keys, or add one.")
            else:
                self.add_error(
                    "new_key", "Add an SSH key: bare-metal servers are reached with keys only."
                )
        return cleaned

    def spec(self) -> dict:
        """The order's spec: the servers, and the keys chosen plus the one being added."""
        keys = list(self.cleaned_data["ssh_keys"])
        if self.new_key_fingerprint and self.new_key_fingerprint not in keys:
            keys.append(self.new_key_fingerprint)
        spec = {f: self.cleaned_data[f] for f in ("gpu_model", "nodes", "topology")}
        if self.cleaned_data["site"]:
            spec["site"] = self.cleaned_data["site"]
        return {**spec, "ssh_keys": keys}

    def new_key_to_save(self) -> bool:
        """A key was pasted that is not one of the orderer's yet."""
        known = {fingerprint for fingerprint, _ in self.fields["ssh_keys"].choices}
        return bool(self.new_key_fingerprint) and self.new_key_fingerprint not in known


class NotebookOrderForm(forms.Form):
    profile = forms.ChoiceField(label="GPU", widget=forms.RadioSelect, choices=())

    def __init__(self, *args, profiles: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["profile"].choices = profiles
        if profiles:
            self.fields["profile"].initial = profiles[0][0]
