"""Switch and power drivers are chosen by settings (SWITCH_DRIVERS, POWER_DRIVERS): a new
vendor is a module plus a line of settings, and a wrong line says which setting to fix."""

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from fabric.networks.drivers import SwitchDriver, driver_for
from fabric.networks.drivers.eos import AristaEOS
from fabric.networks.drivers.registry import NoDriver
from fabric.power.base import BmcAccess
from fabric.power.redfish import Redfish
from fabric.power.registry import power_driver

ACCESS = BmcAccess("http://127.0.0.1:9", "/redfish/v1/Systems/1", "admin", "not-used")


class LabOS(AristaEOS):
    """A vendor that exists only in this module."""


class LabRedfish(Redfish):
    """A BMC protocol that exists only in this module."""


def test_a_switch_driver_named_in_settings_is_what_the_registry_returns():
    drivers = {**settings.SWITCH_DRIVERS, "lab_os": f"{__name__}.LabOS"}
    with override_settings(SWITCH_DRIVERS=drivers):
        assert type(driver_for("lab_os")) is LabOS
        assert type(driver_for("arista_eos")) is AristaEOS


def test_every_platform_in_settings_loads_a_switch_driver():
    for platform in settings.SWITCH_DRIVERS:
        assert isinstance(driver_for(platform), SwitchDriver)


def test_a_platform_without_a_driver_names_the_setting():
    with pytest.raises(NoDriver, match=r"'vendor_x' in settings\.SWITCH_DRIVERS"):
        driver_for("vendor_x")


@override_settings(SWITCH_DRIVERS={"lab_os": "fabric.networks.drivers.nowhere.Driver"})
def test_a_driver_path_that_does_not_import_names_the_setting_and_the_path():
    with pytest.raises(
        ImproperlyConfigured,
        match=r"settings\.SWITCH_DRIVERS\['lab_os'\] = "
        r"'fabric\.networks\.drivers\.nowhere\.Driver'",
    ):
        driver_for("lab_os")


@override_settings(SWITCH_DRIVERS={"lab_os": f"{__name__}.LabRedfish"})
def test_a_class_that_is_not_a_switch_driver_is_refused():
    with pytest.raises(ImproperlyConfigured, match=r"is not a SwitchDriver"):
        driver_for("lab_os")


def test_a_power_driver_named_in_settings_is_what_the_registry_returns():
    drivers = {**settings.POWER_DRIVERS, "lab_bmc": f"{__name__}.LabRedfish"}
    with override_settings(POWER_DRIVERS=drivers):
        driver = power_driver("lab_bmc", ACCESS)
        assert type(driver) is LabRedfish and driver.access == ACCESS
        assert type(power_driver("redfish", ACCESS)) is Redfish


def test_a_protocol_without_a_power_driver_names_the_setting():
    with pytest.raises(LookupError, match=r"'ipmi' in settings\.POWER_DRIVERS"):
        power_driver("ipmi", ACCESS)
