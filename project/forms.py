from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class ReportForm(forms.Form):
    rows = forms.IntegerField(
        label=_("Rows"), min_value=1, max_value=100_000, initial=200
    )
    row_ms = forms.IntegerField(
        label=_("Milliseconds per row"), min_value=0, max_value=10_000, initial=20
    )


class ChecksumForm(forms.Form):
    file = forms.FileField(label=_("File"))
