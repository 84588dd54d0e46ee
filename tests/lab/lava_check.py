"""Checks rvbuild's LAVA exports with LAVA's own code (Debian 12's lava-common and lava-server's
device-type templates): each job validates with lava_common.schemas.validate (strict), each
device dictionary renders through base-uboot.jinja2 into a device configuration that
lava_common.schemas.device.validate accepts and that offers the job's deploy and boot methods.

Usage: lava_check.py DEVICE_TYPES_DIR JOB.yaml... (each job's dictionary: JOB.device.jinja2)
Prints one JSON line per job with what the rendered device says.
"""

import json
import os
import sys
import tempfile

import jinja2
import yaml
from lava_common.schemas import device as device_schema
from lava_common.schemas import validate as validate_job
from voluptuous import Invalid


def check(device_types, job_path):
    with open(job_path) as f:
        job = yaml.safe_load(f)
    validate_job(job, strict=True)
    # The schema must be able to say no, or the pass above means nothing.
    broken = dict(job, actions=[{"boot": {"commands": ["boot"]}}])
    try:
        validate_job(broken, strict=True)
        raise SystemExit(f"{job_path}: LAVA's schema accepted a boot action without a method")
    except Invalid:
        pass

    dict_path = job_path[: -len(".yaml")] + ".device.jinja2"
    with tempfile.TemporaryDirectory() as tmp:
        # The device type's template, as the dictionary's comment tells the lab admin to add it.
        with open(os.path.join(tmp, job["device_type"] + ".jinja2"), "w") as f:
            f.write("{% extends 'base-uboot.jinja2' %}\n")
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([tmp, os.path.dirname(os.path.abspath(dict_path)), device_types]),
            trim_blocks=True,
            autoescape=False,
        )
        rendered = env.get_template(os.path.basename(dict_path)).render()
    device = yaml.safe_load(rendered)
    device_schema.validate(device)
    actions = device["actions"]
    deploy = job["actions"][0]["deploy"]["to"]
    boot = job["actions"][1]["boot"]["method"]
    if deploy not in actions["deploy"]["methods"]:
        raise SystemExit(f"{dict_path}: the device offers no `{deploy}` deploy")
    if boot not in actions["boot"]["methods"]:
        raise SystemExit(f"{dict_path}: the device offers no `{boot}` boot")
    images = sorted(job["actions"][0]["deploy"]["images"])
    print(json.dumps({
        "job": job_path,
        "images": images,
        "flasher": actions["deploy"]["methods"]["flasher"]["commands"],
        "connect": device["commands"]["connect"],
        "prompt": actions["boot"]["methods"]["u-boot"]["parameters"]["bootloader_prompt"],
        "end": job["actions"][2]["test"]["monitors"][0]["end"],
    }))


def main():
    device_types = sys.argv[1]
    for job_path in sys.argv[2:]:
        check(device_types, job_path)


if __name__ == "__main__":
    main()
