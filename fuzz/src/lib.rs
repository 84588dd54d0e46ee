//! The bodies of the fuzz targets: one function per parser of outside input (profiles, `.drv`
//! files, machines / ssh_config / known_hosts lines, serve-protocol replies, NARs, XMODEM and
//! YMODEM receivers, the U-Boot console). The binaries in `fuzz_targets/` call them under
//! libFuzzer; `tests/fuzz_corpus.rs` includes this file and replays the checked-in seeds and
//! crash regressions through them, so CI runs every target on every change.
//!
//! Each function must return normally for any input: a panic (including a failed `assert!`
//! on a property such as a round trip) is a crash.

use std::io;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use rvbuild::flash::link::SerialLink;
use rvbuild::flash::uboot::{self, Console, ConsoleOptions};
use rvbuild::flash::xmodem::{self, Check, Timing};
use rvbuild::flash::ymodem;
use rvbuild::nix::drv::{BasicDerivation, Derivation, DerivationOutput};
use rvbuild::nix::nar;
use rvbuild::nix::serve::channel::ServeChannel;
use rvbuild::nix::serve::{BuildOptions, ServeClient};
use rvbuild::nix::store_path::StorePath;
use rvbuild::vocab::event::Silent;

/// A target's body.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz_targets/NAME.rs` and the seed folders call it.
pub const TARGETS: &[(&str, Target)] = &[
    ("profile_yaml", profile_yaml),
    ("drv_aterm", drv_aterm),
    ("builders_lines", builders_lines),
    ("serve_reply", serve_reply),
    ("nar_restore", nar_restore),
    ("xmodem_receive", xmodem_receive),
    ("ymodem_receive", ymodem_receive),
    ("uboot_console", uboot_console),
];

/// Renders a diagnostic the way the CLI shows it (spans into the source included).
fn render(d: impl miette::Diagnostic + Send + Sync + 'static) -> String {
    let mut out = String::new();
    let _ = miette::GraphicalReportHandler::new().render_report(&mut out, &d);
    out
}

/// Board (first byte even) or build profile (odd) YAML: parsed and validated, every problem
/// rendered with its source span.
pub fn profile_yaml(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let errors = if pick % 2 == 0 {
        rvbuild::profile::check_board_text("fuzz.yaml", "fuzz", text).err()
    } else {
        rvbuild::profile::check_profile_text("fuzz.yaml", "fuzz", text).err()
    };
    for e in errors.into_iter().flatten() {
        let _ = e.to_string();
        let _ = render(e);
    }
}

/// A `.drv` file: parsed; a parsed derivation writes back to text that parses to the same
/// derivation; a parse error renders with its pointer into the text.
pub fn drv_aterm(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Derivation::parse(text) {
        Ok(d) => {
            let again = Derivation::parse(&d.to_aterm());
            assert!(again.as_ref().is_ok_and(|a| *a == d), "write/parse round trip: {again:?}");
        }
        Err(e) => {
            let _ = render(e.into_diagnostic("fuzz.drv", text.to_string()));
        }
    }
}

/// Machines lines (each line alone and the text as a specification without `@file`
/// includes), ssh_config text (without `Include`, which reads files) resolved for the words it
/// contains, and known_hosts text looked up for them.
pub fn builders_lines(data: &[u8]) {
    use rvbuild::builders::{known_hosts::KnownHosts, machines, ssh_config::SshConfig};
    let Ok(text) = std::str::from_utf8(data) else { return };
    for (i, line) in text.lines().enumerate() {
        let at = format!("fuzz:{}", i + 1);
        if let Ok(m) = machines::parse_line(line, &at) {
            let again = machines::parse_line(&m.to_line(), &at);
            assert!(again.as_ref().is_ok_and(|a| *a == m), "machines line round trip: {m:?} -> {again:?}");
        }
    }
    let _ = machines::check_spec(text, "fuzz");

    let no_include: String = text
        .lines()
        .filter(|l| !l.trim_start().to_ascii_lowercase().starts_with("include"))
        .map(|l| format!("{l}\n"))
        .collect();
    let nowhere = Path::new("/nonexistent/rvbuild-fuzz");
    let words: Vec<&str> = text.split_whitespace().take(8).collect();
    if let Ok(cfg) = SshConfig::parse(&no_include, "fuzz", nowhere, Some(nowhere)) {
        for w in &words {
            let _ = cfg.resolve(w, Some(nowhere));
        }
    }

    let mut kh = KnownHosts::default();
    kh.add_text(text, "fuzz");
    for w in &words {
        for port in [22, 2222] {
            let _ = kh.lookup(w, port);
        }
    }
    for e in &kh.entries {
        let _ = kh.is_revoked(&e.key);
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime for the fuzz target")
    })
}

const ASKED: &str = "/nix/store/7sqpqjj28pjaqp6b2yf385gnhgbq09lz-a";
const DRV: &str = "/nix/store/22222222222222222222222222222222-a.drv";
/// Larger NARs are not downloaded by the serve target (the input cannot hold them anyway).
const MAX_FUZZ_NAR: u64 = 1 << 20;

/// Replies of a builder's `nix-store --serve` (after the first byte, which picks up to four
/// requests, two bits each): the handshake, QueryValidPaths, QueryPathInfos, BuildDerivation,
/// and DumpStorePath restored into a directory. What the client accepts names only what was
/// asked.
pub fn serve_reply(data: &[u8]) {
    let Some((&ops, replies)) = data.split_first() else { return };
    let asked = [StorePath::parse(ASKED).expect("a valid constant store path")];
    let drv_path = StorePath::parse(DRV).expect("a valid constant .drv path");
    let out = DerivationOutput { path: ASKED.to_string(), hash_algo: String::new(), hash: String::new() };
    let basic = BasicDerivation {
        outputs: [("out".to_string(), out)].into(),
        input_srcs: Default::default(),
        platform: "x86_64-linux".into(),
        builder: "/bin/sh".into(),
        args: vec!["-c".into(), "echo > $out".into()],
        env: Default::default(),
    };
    runtime().block_on(async {
        let channel = ServeChannel {
            from_builder: Box::pin(io::Cursor::new(replies.to_vec())),
            to_builder: Box::pin(tokio::io::sink()),
            stderr: Box::pin(tokio::io::empty()),
            keepalive: Box::new(()),
            label: "fuzz".into(),
        };
        let Ok(mut c) = ServeClient::connect(channel, None).await else { return };
        for i in 0..4 {
            if !c.is_usable() {
                break;
            }
            match (ops >> (2 * i)) & 3 {
                0 => {
                    if let Ok(valid) = c.query_valid_paths(&asked, false, false).await {
                        assert!(valid.iter().all(|p| asked.contains(p)), "{valid:?}");
                    }
                }
                1 => {
                    if let Ok(infos) = c.query_path_infos(&asked).await {
                        assert!(infos.keys().all(|p| asked.contains(p)), "{infos:?}");
                    }
                }
                2 => {
                    if let Ok(res) = c.build_derivation(&drv_path, &basic, &BuildOptions::default()).await {
                        assert!(res.built_outputs.values().all(|p| p.as_str() == ASKED), "{res:?}");
                    }
                }
                _ => {
                    let Ok(infos) = c.query_path_infos(&asked).await else { continue };
                    let Some(info) = infos.get(&asked[0]).filter(|i| i.nar_size <= MAX_FUZZ_NAR) else { continue };
                    let Ok(dir) = tempfile::tempdir() else { return };
                    let dest = dir.path().join("out");
                    if c.dump_store_path_to_dir(info, &dest).await.is_err() {
                        // Whatever was restored before the error is gone again.
                        assert!(std::fs::symlink_metadata(&dest).is_err(), "a partial restore was left");
                    }
                }
            }
        }
    });
}

/// A NAR restored into a fresh directory: refused, or restored so that dumping the result
/// gives back exactly the bytes consumed (nothing outside the tree, nothing missing); the
/// plain validator agrees with the restorer.
pub fn nar_restore(data: &[u8]) {
    let valid = nar::validate(&mut &data[..]);
    let Ok(dir) = tempfile::tempdir() else { return };
    let dest = dir.path().join("out");
    match nar::restore(&mut &data[..], &dest) {
        Ok(size) => {
            assert_eq!(valid.as_ref().ok(), Some(&size), "validate and restore disagree");
            let mut again = Vec::new();
            match nar::dump_path(&dest, &mut again) {
                Ok(()) => assert!(again == data[..size as usize], "the restored tree dumps differently"),
                // Paths deeper than PATH_MAX restore (through descriptors) but do not dump.
                Err(e) => assert!(size > 4096, "dump of the restored tree failed: {e}"),
            }
            let entries: Vec<_> = std::fs::read_dir(dir.path()).map(|r| r.flatten().collect()).unwrap_or_default();
            assert_eq!(entries.len(), 1, "something was created beside the destination");
        }
        Err(_) => {
            assert!(std::fs::symlink_metadata(&dest).is_err(), "a refused NAR left {}", dest.display());
        }
    }
}

/// The byte that stands for "the line stayed quiet" in a [`ScriptLink`]'s input (`QUIET, 0`;
/// `QUIET, b` is the data byte `b`, so `QUIET, QUIET` is `QUIET` itself).
pub const QUIET: u8 = 0xFE;

/// A serial line that plays back scripted input: every read takes bytes from it (or one
/// timeout, see [`QUIET`]), so every exchange ends when the input does; writes are dropped.
pub struct ScriptLink<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> ScriptLink<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        ScriptLink { input, pos: 0 }
    }
}

impl SerialLink for ScriptLink<'_> {
    fn read_timeout(&mut self, buf: &mut [u8], _timeout: Duration) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let rest = &self.input[self.pos..];
        match rest {
            [] => Err(io::Error::new(io::ErrorKind::BrokenPipe, "the scripted input ended")),
            [QUIET] | [QUIET, 0, ..] => {
                self.pos += rest.len().min(2);
                Ok(0)
            }
            [QUIET, b, ..] => {
                buf[0] = *b;
                self.pos += 2;
                Ok(1)
            }
            _ => {
                let n = rest.iter().take(buf.len()).take_while(|&&b| b != QUIET).count();
                buf[..n].copy_from_slice(&rest[..n]);
                self.pos += n;
                Ok(n)
            }
        }
    }

    fn write_all(&mut self, _data: &[u8]) -> io::Result<()> {
        Ok(())
    }

    fn set_baud(&mut self, _baud: u32) -> io::Result<()> {
        Ok(())
    }

    fn name(&self) -> String {
        "fuzz".into()
    }
}

fn quick_timing() -> Timing {
    Timing { retries: 3, ..Timing::default() }
}

/// An XMODEM sender's bytes (after the first byte: even = CRC mode, odd = checksums): the
/// received payload is whole blocks.
pub fn xmodem_receive(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else { return };
    let check = if pick % 2 == 0 { Check::Crc } else { Check::Sum };
    let mut link = ScriptLink::new(rest);
    let opts = xmodem::ReceiveOptions { check, timing: quick_timing() };
    if let Ok(got) = xmodem::receive(&mut link, &opts, &Silent) {
        assert!(got.len() % 128 == 0, "{} bytes is not whole blocks", got.len());
    }
}

/// A YMODEM sender's bytes: every received file has a plain name (no directory part, not
/// `.` or `..`, not empty) and no more data than its blocks carried.
pub fn ymodem_receive(data: &[u8]) {
    let mut link = ScriptLink::new(data);
    let opts = ymodem::ReceiveOptions { timing: quick_timing() };
    if let Ok(files) = ymodem::receive(&mut link, &opts, &Silent) {
        for f in files {
            assert!(!f.name.is_empty() && f.name != "." && f.name != ".." && !f.name.contains('/'), "{:?}", f.name);
            assert!(f.data.len() <= data.len(), "more data than input");
        }
    }
}

/// U-Boot's side of a console session at its prompt (after the first byte, which picks the
/// command): echo, output, prompt, and the parsers of `crc32`, `loady` and block-device output.
pub fn uboot_console(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let _ = uboot::parse_crc32(&text);
    let _ = uboot::parse_total_size(&text);
    let _ = uboot::parse_blocks_done(&text, "written");
    let _ = uboot::board_error(&text);
    let mut link = ScriptLink::new(rest);
    let opts =
        ConsoleOptions { attach_timeout: Duration::from_secs(1), command_timeout: Duration::from_secs(5), retries: 2 };
    let mut console = Console::at_prompt(&mut link, opts);
    match pick % 5 {
        0 => {
            let _ = console.run("version");
        }
        1 => {
            if let Ok(Some(v)) = console.getenv("bootcmd") {
                assert!(!v.contains('\n'), "{v:?}");
            }
        }
        2 => {
            let _ = console.crc32_is(0x8020_0000, 0x10, 0xb1fb_5457);
        }
        3 => {
            let _ = console.wait_prompt(Duration::from_secs(5));
        }
        _ => {
            let _ = console.loady(0x8020_0000, "fuzz.bin", b"0123456789abcdef", None, &Silent);
        }
    }
}
