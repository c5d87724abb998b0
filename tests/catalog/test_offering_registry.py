"""Offerings are chosen by settings.OFFERINGS (Product.kind -> class): a new product is a
module plus a line of settings, and a kind nothing fulfils says which setting to look at."""

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from catalog.offerings import offering_for
from catalog.offerings.bare_metal import BareMetal


class LabMetal(BareMetal):
    """A product that exists only in this module."""

    kind = "lab_metal"


def test_an_offering_named_in_settings_is_what_the_registry_returns():
    with override_settings(OFFERINGS={**settings.OFFERINGS, "lab_metal": f"{__name__}.LabMetal"}):
        assert type(offering_for("lab_metal")) is LabMetal
        assert type(offering_for("bare_metal")) is BareMetal


def test_every_offering_in_settings_is_filed_under_its_own_kind():
    for kind in settings.OFFERINGS:
        assert offering_for(kind).kind == kind


def test_a_kind_that_nothing_fulfils_tells_the_customer_and_names_the_setting_in_a_note():
    with pytest.raises(LookupError) as raised:
        offering_for("kubeflow")
    assert str(raised.value) == "Nothing can fulfil 'kubeflow' orders yet."
    assert raised.value.__notes__ == ["settings.OFFERINGS names no offering for 'kubeflow'."]


@override_settings(OFFERINGS={"ray": "catalog.offerings.ray.Ray"})
def test_an_offering_path_that_does_not_import_names_the_setting():
    with pytest.raises(ImproperlyConfigured, match=r"settings\.OFFERINGS\['ray'\]"):
        offering_for("ray")
