//! A labgrid environment for a board: its serial port (`RawSerialPort`, `SerialDriver`),
//! U-Boot (`UBootDriver` with the board's prompt) and `RvbuildStrategy` from
//! `contrib/labgrid/rvbuild_labgrid.py`, whose states flash with `rvbuild flash` and boot to the
//! marker with `rvbuild monitor`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::{Facts, LabError};
use crate::Result;

/// The strategy's file name, imported by the environment from the directory it lies in.
pub const STRATEGY_FILE: &str = "rvbuild_labgrid.py";
/// The strategy itself (`contrib/labgrid/rvbuild_labgrid.py`), written beside the environment.
pub const STRATEGY: &str = include_str!("../../contrib/labgrid/rvbuild_labgrid.py");

/// What the environment refers to on this machine.
#[derive(Debug, Clone)]
pub struct Request {
    /// The board's serial port.
    pub port: String,
    /// The rvbuild executable the strategy runs.
    pub rvbuild: String,
    /// Each `rvbuild flash` option's file (`image`, `spl`, `fit`), absolute.
    pub images: BTreeMap<String, PathBuf>,
}

#[derive(Serialize)]
struct Env<'a> {
    targets: BTreeMap<&'a str, Target<'a>>,
    images: BTreeMap<String, String>,
    tools: BTreeMap<&'a str, &'a str>,
    imports: Vec<&'a str>,
}

#[derive(Serialize)]
struct Target<'a> {
    resources: Resources<'a>,
    drivers: Drivers<'a>,
}

#[derive(Serialize)]
struct Resources<'a> {
    #[serde(rename = "RawSerialPort")]
    raw_serial_port: RawSerialPort<'a>,
}

#[derive(Serialize)]
struct RawSerialPort<'a> {
    port: &'a str,
    speed: u32,
}

/// Listed in binding order: each driver after the ones it binds to.
#[derive(Serialize)]
struct Drivers<'a> {
    #[serde(rename = "SerialDriver")]
    serial: BTreeMap<&'a str, &'a str>,
    #[serde(rename = "UBootDriver")]
    uboot: UBoot<'a>,
    #[serde(rename = "RvbuildStrategy")]
    strategy: Strategy<'a>,
}

#[derive(Serialize)]
struct UBoot<'a> {
    prompt: &'a str,
    autoboot: &'a str,
    boot_command: &'a str,
    login_timeout: u64,
}

#[derive(Serialize)]
struct Strategy<'a> {
    board: &'a str,
    marker: &'a str,
    /// `rvbuild flash` option -> name in the environment's `images`.
    flash_images: BTreeMap<String, String>,
    flash_timeout: u64,
    boot_timeout: u64,
    /// `--project` of the rvbuild commands (empty: a board shipped with rvbuild).
    project: String,
}

/// The environment's YAML text.
pub fn environment(facts: &Facts, req: &Request) -> Result<String> {
    let flash_images: BTreeMap<String, String> =
        facts.images.iter().map(|i| (i.option.clone(), format!("{}-{}", facts.board, i.region))).collect();
    let images = facts
        .images
        .iter()
        .filter_map(|i| {
            req.images.get(&i.option).map(|p| (format!("{}-{}", facts.board, i.region), p.display().to_string()))
        })
        .collect();
    let env = Env {
        targets: BTreeMap::from([(
            "main",
            Target {
                resources: Resources { raw_serial_port: RawSerialPort { port: &req.port, speed: facts.baud } },
                drivers: Drivers {
                    serial: BTreeMap::new(),
                    uboot: UBoot {
                        prompt: &facts.prompt,
                        autoboot: super::AUTOBOOT,
                        boot_command: super::BOOT_COMMAND,
                        login_timeout: 60,
                    },
                    strategy: Strategy {
                        board: &facts.board,
                        marker: &facts.marker,
                        flash_images,
                        flash_timeout: facts.flash_timeout(),
                        boot_timeout: facts.boot_timeout,
                        project: facts.project.as_ref().map(|d| d.display().to_string()).unwrap_or_default(),
                    },
                },
            },
        )]),
        images,
        tools: BTreeMap::from([("rvbuild", req.rvbuild.as_str())]),
        imports: vec![STRATEGY_FILE],
    };
    let yaml =
        serde_saphyr::to_string(&env).map_err(|source| LabError::Serialize { what: "labgrid environment", source })?;
    Ok(format!(
        "# labgrid environment for {board}, written by `rvbuild lab labgrid {board}`.\n\
         # Imports {STRATEGY_FILE} (RvbuildStrategy) from this file's directory. States: off, uboot,\n\
         # flashed (rvbuild flash), booted (rvbuild monitor --until the marker). With a power driver\n\
         # (e.g. ManualPowerDriver) added to the target, the strategy power-cycles the board.\n{yaml}",
        board = facts.board
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::FlashImage;

    fn facts() -> Facts {
        Facts {
            board: "qemu-riscv64".into(),
            baud: 115_200,
            prompt: "=> ".into(),
            marker: "RVBUILD-BOOT-OK".into(),
            boot_timeout: 180,
            flash_bytes: 1 << 20,
            images: vec![FlashImage { option: "image".into(), region: "disk".into(), file: "disk.img".into() }],
            project: None,
        }
    }

    #[test]
    fn environment_keeps_the_prompts_trailing_space_and_names_the_image() {
        let req = Request {
            port: "/dev/ttyUSB0".into(),
            rvbuild: "/usr/bin/rvbuild".into(),
            images: BTreeMap::from([("image".to_string(), PathBuf::from("/r/disk.img"))]),
        };
        let text = environment(&facts(), &req).unwrap();
        let v: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        let main = &v["targets"]["main"];
        assert_eq!(main["resources"]["RawSerialPort"]["port"], "/dev/ttyUSB0");
        assert_eq!(main["resources"]["RawSerialPort"]["speed"], 115_200);
        assert_eq!(main["drivers"]["UBootDriver"]["prompt"], "=> ");
        assert_eq!(main["drivers"]["RvbuildStrategy"]["flash_images"]["image"], "qemu-riscv64-disk");
        assert_eq!(v["images"]["qemu-riscv64-disk"], "/r/disk.img");
        assert_eq!(v["imports"][0], STRATEGY_FILE);
        // Drivers in binding order.
        let s = text.find("SerialDriver").unwrap();
        let u = text.find("UBootDriver").unwrap();
        let r = text.find("RvbuildStrategy:").unwrap();
        assert!(s < u && u < r, "{text}");
    }
}
