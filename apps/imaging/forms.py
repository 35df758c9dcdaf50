from django import forms

from apps.institutions.models import Institution


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several DICOM files or zip archives in one field."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"multiple": True}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(d, initial) for d in data]
        return [single(data, initial)] if data else []


class UploadForm(forms.Form):
    files = MultipleFileField(help_text="DICOM files or zip archives.")
    institution = forms.ModelChoiceField(queryset=Institution.objects.all(), required=False)
    vendor_output = forms.BooleanField(
        required=False, label="These files are a vendor's DL-enhanced output (e.g. from the scanner's DL reconstruction)"
    )


class CaseMetadataImportForm(forms.Form):
    csv_file = forms.FileField(label="CSV file")
