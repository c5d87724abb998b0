from django import forms

from catalog.offerings.notebook import profiles


def _profile_choices():
    return [(key, p["label"]) for key, p in profiles().items()]


class CourseForm(forms.Form):
    title = forms.CharField(max_length=120)
    starts_on = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    ends_on = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    profiles = forms.MultipleChoiceField(
        label="Notebooks students may launch", widget=forms.CheckboxSelectMultiple, choices=()
    )
    gpu_hours_per_student = forms.DecimalField(
        label="GPU-hours per student", min_value=0.1, max_digits=8, decimal_places=2, initial=10
    )
    budget = forms.DecimalField(
        label="Course budget ($)", min_value=1, max_digits=12, decimal_places=2
    )
    idle_minutes = forms.IntegerField(
        label="Stop idle notebooks after (minutes)", min_value=1, max_value=1440, initial=30
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["profiles"].choices = _profile_choices()


class RosterForm(forms.Form):
    emails = forms.CharField(
        label="Paste addresses",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "one per line"}),
    )
    file = forms.FileField(label="or upload a CSV (an email column)", required=False)

    def clean(self):
        data = super().clean()
        if not data.get("emails", "").strip() and not data.get("file"):
            raise forms.ValidationError("Paste addresses or choose a CSV file.")
        return data


class ExtendForm(forms.Form):
    hours = forms.DecimalField(min_value=0.1, max_digits=8, decimal_places=2, initial=5)


class LabSessionForm(forms.Form):
    starts_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    ends_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    profile = forms.ChoiceField(choices=())

    def __init__(self, *args, course, **kwargs):
        super().__init__(*args, **kwargs)
        labels = dict(_profile_choices())
        self.fields["profile"].choices = [(p, labels.get(p, p)) for p in course.profiles]


class LaunchForm(forms.Form):
    profile = forms.ChoiceField(widget=forms.RadioSelect, choices=())

    def __init__(self, *args, course, **kwargs):
        super().__init__(*args, **kwargs)
        labels = dict(_profile_choices())
        self.fields["profile"].choices = [(p, labels.get(p, p)) for p in course.profiles]
        self.fields["profile"].initial = course.profiles[0] if course.profiles else None
