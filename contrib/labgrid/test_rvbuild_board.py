"""A board through RvbuildStrategy: U-Boot prompt, flash, boot to the marker.

    rvbuild lab labgrid BOARD --port /dev/ttyUSB0 -o env.yaml
    pytest --lg-env env.yaml contrib/labgrid/test_rvbuild_board.py
"""

import pytest


@pytest.fixture(scope="module")
def rvbuild(target):
    return target.get_driver("RvbuildStrategy")


def test_uboot_answers_at_its_prompt(rvbuild, target):
    rvbuild.transition("uboot")
    uboot = target.get_driver("UBootDriver")
    out = uboot.run_check("version")
    assert any("U-Boot" in line for line in out), out


def test_flash_writes_and_reads_back(rvbuild):
    rvbuild.transition("flashed")
    assert rvbuild.status.name == "flashed"


def test_boot_reaches_the_marker(rvbuild):
    rvbuild.transition("booted")
    with open(rvbuild.boot_log, "rb") as log:
        assert rvbuild.marker.encode() in log.read()
