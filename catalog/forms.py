from django import forms


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
    gpu_model = forms.ChoiceField(label="GPU model", choices=())
    nodes = forms.IntegerField(label="Servers", min_value=1, max_value=64, initial=1)
    topology = forms.ChoiceField(label="Placement", choices=())

    def __init__(self, *args, gpu_models: list[str], topologies, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["gpu_model"].choices = [(m, m) for m in gpu_models]
        self.fields["topology"].choices = topologies
        self.fields["topology"].initial = "any"


class NotebookOrderForm(forms.Form):
    profile = forms.ChoiceField(label="GPU", widget=forms.RadioSelect, choices=())

    def __init__(self, *args, profiles: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["profile"].choices = profiles
        if profiles:
            self.fields["profile"].initial = profiles[0][0]
