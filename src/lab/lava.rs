//! A LAVA job for a board (deploy `to: flasher`, boot `method: u-boot`, a test that watches for
//! the marker) and the device dictionary the job needs: the flasher command runs
//! `rvbuild flash`, the console is `rvbuild monitor`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Facts, LabError};
use crate::Result;

/// Where the job's images come from and how the device is reached.
#[derive(Debug, Clone)]
pub struct Request {
    /// LAVA's device type for the board (default `rvbuild-BOARD`).
    pub device_type: String,
    /// The URL the job downloads each `rvbuild flash` option's file from.
    pub urls: BTreeMap<String, String>,
    /// The board's serial port on the LAVA worker.
    pub port: String,
}

#[derive(Serialize)]
struct Job<'a> {
    device_type: &'a str,
    job_name: String,
    timeouts: Timeouts,
    priority: &'a str,
    visibility: &'a str,
    actions: Vec<Action<'a>>,
}

#[derive(Serialize)]
struct Timeouts {
    job: Minutes,
    action: Minutes,
    connection: Minutes,
}

#[derive(Serialize, Clone, Copy)]
struct Minutes {
    minutes: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum Action<'a> {
    Deploy(Deploy<'a>),
    Boot(Boot<'a>),
    Test(Test<'a>),
}

#[derive(Serialize)]
struct Deploy<'a> {
    to: &'a str,
    timeout: Minutes,
    images: BTreeMap<String, Url>,
}

#[derive(Serialize)]
struct Url {
    url: String,
}

#[derive(Serialize)]
struct Boot<'a> {
    method: &'a str,
    commands: Vec<&'a str>,
    timeout: Minutes,
}

#[derive(Serialize)]
struct Test<'a> {
    timeout: Minutes,
    monitors: Vec<Monitor<'a>>,
}

#[derive(Serialize)]
struct Monitor<'a> {
    name: &'a str,
    start: &'a str,
    end: &'a str,
    pattern: &'a str,
    fixupdict: BTreeMap<&'a str, &'a str>,
}

fn minutes(seconds: u64) -> Minutes {
    Minutes { minutes: seconds.div_ceil(60).max(1) }
}

/// The `rvbuild flash` line of the device dictionary: LAVA replaces `{IMAGE}` (`{SPL}`, `{FIT}`)
/// with the downloaded file of the deploy's image of that name.
pub fn flash_command(facts: &Facts, port: &str) -> String {
    let mut line = format!("rvbuild {}flash {} --port {port}", facts.project_arg(), facts.board);
    for i in &facts.images {
        line.push_str(&format!(" --{} {{{}}}", i.option, i.option.to_uppercase()));
    }
    line
}

/// The console command of the device dictionary.
pub fn connection_command(facts: &Facts, port: &str) -> String {
    format!("rvbuild {}monitor {} --port {port}", facts.project_arg(), facts.board)
}

/// The job's YAML text.
pub fn job(facts: &Facts, req: &Request) -> Result<String> {
    let flash = facts.flash_timeout();
    let boot = facts.boot_timeout;
    let images = facts
        .images
        .iter()
        .map(|i| {
            let url = req.urls.get(&i.option).cloned().unwrap_or_else(|| i.file.clone());
            (i.option.clone(), Url { url })
        })
        .collect();
    let job = Job {
        device_type: &req.device_type,
        job_name: format!("rvbuild {}: flash, boot, marker", facts.board),
        timeouts: Timeouts { job: minutes(flash + 2 * boot + 600), action: minutes(flash), connection: minutes(120) },
        priority: "medium",
        visibility: "public",
        actions: vec![
            Action::Deploy(Deploy { to: "flasher", timeout: minutes(flash), images }),
            Action::Boot(Boot { method: "u-boot", commands: vec![super::BOOT_COMMAND], timeout: minutes(boot) }),
            Action::Test(Test {
                timeout: minutes(boot),
                monitors: vec![Monitor {
                    name: "rvbuild-boot",
                    start: "rvbuild-init:",
                    end: &facts.marker,
                    // One test case per module init loads (or fails to); the marker ends the test.
                    pattern: r"rvbuild-init: (?P<result>loaded|finit_module) \S*?(?P<test_case_id>[\w.-]+\.ko)",
                    fixupdict: BTreeMap::from([("loaded", "pass"), ("finit_module", "fail")]),
                }],
            }),
        ],
    };
    let yaml = serde_saphyr::to_string(&job).map_err(|source| LabError::Serialize { what: "LAVA job", source })?;
    Ok(format!(
        "# LAVA job for {board}, written by `rvbuild lab lava {board}`: flashes with `rvbuild flash`\n\
         # (the device dictionary's flasher_deploy_commands), boots with U-Boot's `{cmd}`, and passes\n\
         # when init prints `{marker}`.\n{yaml}",
        board = facts.board,
        cmd = super::BOOT_COMMAND,
        marker = facts.marker
    ))
}

/// Quotes `s` as a Jinja2 string literal.
fn jinja_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The device dictionary (Jinja2) for a device of `req.device_type` on `req.port`.
pub fn device_dictionary(facts: &Facts, req: &Request) -> String {
    let prompt = facts.prompt.trim_end();
    format!(
        "{{# LAVA device dictionary for a {board} on {port}, written by `rvbuild lab lava {board}`.\n   \
         The device type {dt} needs a template in the device-types directory, {dt}.jinja2,\n   \
         of one line: {{% extends 'base-uboot.jinja2' %}}\n   \
         rvbuild must be installed on the worker; add the lab's power commands below. #}}\n\
         {{% extends {dt_file} %}}\n\
         {{% set connection_command = {connect} %}}\n\
         {{% set baud_rate = {baud} %}}\n\
         {{% set bootloader_prompt = {prompt} %}}\n\
         {{% set interrupt_prompt = {autoboot} %}}\n\
         {{% set interrupt_char = ' ' %}}\n\
         {{% set flasher_deploy_commands = [{flash}] %}}\n\
         {{# set hard_reset_command = 'your PDU or relay command' #}}\n\
         {{# set power_off_command = '...' #}}\n\
         {{# set power_on_command = '...' #}}\n",
        board = facts.board,
        port = req.port,
        dt = req.device_type,
        dt_file = jinja_str(&format!("{}.jinja2", req.device_type)),
        connect = jinja_str(&connection_command(facts, &req.port)),
        baud = facts.baud,
        prompt = jinja_str(prompt),
        autoboot = jinja_str("Hit any key to stop autoboot"),
        flash = jinja_str(&flash_command(facts, &req.port)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::FlashImage;

    fn jh7110() -> Facts {
        Facts {
            board: "visionfive2".into(),
            baud: 115_200,
            prompt: "=> ".into(),
            marker: "RVBUILD-BOOT-OK".into(),
            boot_timeout: 300,
            flash_bytes: 16 << 20,
            images: vec![
                FlashImage { option: "spl".into(), region: "spl".into(), file: "u-boot-spl.bin.normal.out".into() },
                FlashImage { option: "fit".into(), region: "fit".into(), file: "u-boot.itb".into() },
            ],
            project: None,
        }
    }

    #[test]
    fn flash_command_names_each_image_by_its_lava_key() {
        assert_eq!(
            flash_command(&jh7110(), "/dev/ttyUSB0"),
            "rvbuild flash visionfive2 --port /dev/ttyUSB0 --spl {SPL} --fit {FIT}"
        );
        let own = Facts { project: Some("/srv/boards".into()), ..jh7110() };
        assert_eq!(
            connection_command(&own, "/dev/x"),
            "rvbuild --project /srv/boards monitor visionfive2 --port /dev/x"
        );
    }

    #[test]
    fn job_timeouts_cover_the_flash_at_the_console_speed() {
        let f = jh7110();
        let req = Request { device_type: "rvbuild-visionfive2".into(), urls: BTreeMap::new(), port: "/dev/x".into() };
        let v: serde_json::Value = serde_saphyr::from_str(&job(&f, &req).unwrap()).unwrap();
        // 16 MiB at 11,520 bytes/s, twice, plus 5 minutes: 3213 s -> 54 minutes.
        assert_eq!(v["actions"][0]["deploy"]["timeout"]["minutes"], 54);
        assert!(v["timeouts"]["job"]["minutes"].as_u64().unwrap() > 54);
        assert_eq!(v["actions"][0]["deploy"]["images"]["fit"]["url"], "u-boot.itb");
        assert_eq!(v["actions"][2]["test"]["monitors"][0]["end"], "RVBUILD-BOOT-OK");
    }

    #[test]
    fn device_dictionary_quotes_for_jinja() {
        let f = jh7110();
        let req =
            Request { device_type: "rvbuild-visionfive2".into(), urls: BTreeMap::new(), port: "/dev/it's".into() };
        let d = device_dictionary(&f, &req);
        assert!(d.contains("{% extends 'rvbuild-visionfive2.jinja2' %}"), "{d}");
        assert!(d.contains(r"--port /dev/it\'s --spl {SPL}"), "{d}");
        assert!(d.contains("{% set bootloader_prompt = '=>' %}"), "{d}");
    }
}
