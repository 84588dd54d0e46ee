//! Whole images through Debian's U-Boot in QEMU, compressed (`gzwrite`), chunked and proven by
//! read-back: the built qemu-riscv64 and qemu-aarch64 disk images onto a blank virtio disk and
//! booted from it; the fallback without gzwrite; an interrupted flash resumed (bytes counted on
//! the line); writes and reads swallowed by the line must fail; the noisy line.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::proxy::{Answer, Proxy, Rule};
use support::{pty, qemu::Qemu};

fn rvbuild() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rvbuild"));
    c.env("CI", "true")
        .env_remove("RVBUILD_PORT")
        .env("XDG_CACHE_HOME", std::env::temp_dir().join("rvbuild-flash-cache"));
    c
}

fn spawn(mut cmd: Command) -> Child {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start rvbuild")
}

fn finish(mut child: Child, limit: Duration) -> (Option<i32>, String, String) {
    let end = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > end {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn flash_cmd(board: &str, port: &str, image: &Path, chunk: u64) -> Command {
    let mut cmd = rvbuild();
    cmd.args(["flash", board, "--port", port, "--timeout", "60"])
        .arg("--image")
        .arg(image)
        .args(["--chunk", &chunk.to_string()]);
    cmd
}

/// A disk that is not blank in the zero sense: zero chunks must really be written.
fn disk(dir: &Path, len: usize) -> std::path::PathBuf {
    let p = dir.join("disk.raw");
    std::fs::write(&p, vec![0xEEu8; len]).unwrap();
    p
}

/// `n` chunks of `chunk` bytes: `noisy` random bytes then text-like filler (compresses well),
/// every third chunk all zeros.
fn image(n: usize, chunk: usize, noisy: usize, seed: u32) -> Vec<u8> {
    let mut img = Vec::new();
    for i in 0..n {
        if i % 3 == 1 {
            img.extend(vec![0u8; chunk]);
            continue;
        }
        let mut c = pty::data(noisy, seed + i as u32);
        c.extend(format!("chunk {i} of the test image; ").repeat(chunk).bytes().take(chunk - noisy));
        img.extend(c);
    }
    // Flash verifies what it sends: the first chunk starts with a RISC-V kernel Image header.
    if img.len() >= 64 {
        let header = support::images::kernel_image("riscv64", img.len(), seed);
        img[..64].copy_from_slice(&header[..64]);
    }
    img
}

fn whole_image_then_boot(arch: &str) {
    let board = format!("qemu-{arch}");
    let out = support::built(&board);
    let manifest = support::manifest(&out);
    let img_path = manifest["artifacts"]["disk.img"].as_str().expect("disk.img artefact").to_string();
    let img = std::fs::read(&img_path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let disk = disk(dir.path(), img.len());
    let junit = dir.path().join("junit.xml");
    let mut vm = Qemu::start_arch(arch, Some(&disk));
    let mut cmd = rvbuild();
    cmd.args(["flash", &board, "--port", &vm.pty, "--timeout", "60", "--boot", "--json"])
        .arg("--out")
        .arg(&out)
        .arg("--junit")
        .arg(&junit);
    let (code, stdout, err) = finish(spawn(cmd), Duration::from_secs(1500));
    vm.stop();
    assert_eq!(code, Some(0), "stdout:\n{}\nstderr:\n{err}", tail(&stdout));
    let got = std::fs::read(&disk).unwrap();
    assert!(got == img, "the disk differs from {img_path}");
    let boot_ok = format!("\"event\":\"boot\",\"board\":\"{board}\",\"ok\":true");
    assert!(stdout.contains(&boot_ok) && stdout.contains("RVBUILD-BOOT-OK"), "{}", tail(&stdout));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("boot") && !xml.contains("<failure"), "{xml}");
}

fn tail(s: &str) -> String {
    s.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// `rvbuild board qemu-riscv64 --flash PORT --boot`: one command builds (from the store: the
/// board's build is shared), verifies, flashes the whole disk image into a blank disk and boots
/// from it; then, on the flashed disk, `--resume` (read-backs only) with a boot that cannot
/// reach the marker in time exits 7 with the console's tail. JSON events and JUnit cases for
/// every step, both times.
#[test]
fn qemu_flash_image_riscv64_board_builds_flashes_and_boots_in_one_command() {
    let board = "qemu-riscv64";
    support::built(board);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("result");
    // Sized after the image, which the build below puts into `out`: the shared build's manifest
    // names the same store path.
    let shared = support::manifest(&support::shared_dir().join(board));
    let img = std::fs::read(shared["artifacts"]["disk.img"].as_str().expect("disk.img artefact")).unwrap();
    let disk = disk(dir.path(), img.len());
    let board_cmd = |pty: &str, junit: &Path, extra: &[&str]| {
        let mut cmd = rvbuild();
        cmd.args(["board", board, "--profile", "ci", "--json", "--flash", pty, "--boot"])
            .arg("--out")
            .arg(&out)
            .arg("--junit")
            .arg(junit)
            .args(extra)
            .current_dir(dir.path());
        cmd
    };

    let junit = dir.path().join("junit.xml");
    let mut vm = Qemu::start_arch("riscv64", Some(&disk));
    let started = Instant::now();
    let (code, stdout, err) = finish(spawn(board_cmd(&vm.pty, &junit, &[])), Duration::from_secs(1500));
    vm.stop();
    eprintln!("board --flash --boot: {:.0} s", started.elapsed().as_secs_f64());
    assert_eq!(code, Some(0), "stdout:\n{}\nstderr:\n{err}", tail(&stdout));
    let manifest = support::manifest(&out);
    assert_eq!(manifest["artifacts"]["disk.img"], shared["artifacts"]["disk.img"], "not the shared build");
    assert!(std::fs::read(&disk).unwrap() == img, "the disk differs from the built image");
    let events: Vec<serde_json::Value> = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let has = |name: &str, ok: bool| events.iter().any(|e| e["event"] == name && e["ok"] == ok);
    // Built from the store (no derivation built), verified, flashed, booted.
    assert!(events.iter().any(|e| e["event"] == "finished" && e["cached"] == true), "{}", tail(&stdout));
    assert!(!events.iter().any(|e| e["event"] == "finished" && e["cached"] == false), "something was built");
    for name in ["verify", "flash", "boot", "summary"] {
        assert!(has(name, true), "no successful `{name}` event:\n{}", tail(&stdout));
    }
    assert!(stdout.contains("RVBUILD-BOOT-OK"), "{}", tail(&stdout));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(!xml.contains("<failure"), "{xml}");
    for case in ["verify", "flash", "boot"] {
        assert!(xml.contains(&format!("classname=\"{case}\"")), "no JUnit case for {case}: {xml}");
    }

    // The failing variant: the marker cannot come within a second.
    let junit = dir.path().join("junit-fail.xml");
    let mut vm = Qemu::start_arch("riscv64", Some(&disk));
    vm.stop_autoboot();
    let extra = ["--resume", "--boot-timeout", "1"];
    let (code, stdout, err) = finish(spawn(board_cmd(&vm.pty, &junit, &extra)), Duration::from_secs(600));
    vm.stop();
    assert_eq!(code, Some(7), "stdout:\n{}\nstderr:\n{err}", tail(&stdout));
    assert!(err.contains("did not boot") && err.contains("no marker") && err.contains("last console lines"), "{err}");
    let events: Vec<serde_json::Value> = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    // Every chunk was proven by the first run: the resumed flash only reads back.
    let resumed = |e: &&serde_json::Value| e["event"] == "flash" && e["ok"] == true;
    let flash = events.iter().find(resumed).unwrap_or_else(|| panic!("no flash event: {}", tail(&stdout)));
    assert!(flash["detail"].as_str().is_some_and(|d| d.contains(" 0 payload bytes sent")), "{flash}");
    assert!(events.iter().any(|e| e["event"] == "boot" && e["ok"] == false), "{}", tail(&stdout));
    assert!(events.iter().any(|e| e["event"] == "summary" && e["exit_code"] == 7), "{}", tail(&stdout));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<failure"), "the failed boot is no JUnit failure: {xml}");
}

#[test]
fn qemu_flash_image_aarch64_whole_disk_then_boots_from_it() {
    whole_image_then_boot("aarch64");
}

/// Flashes `img` through `rules` with `extra` arguments; returns the exit code, stdout, stderr,
/// the disk's contents and the bytes rvbuild sent.
fn flash_via(img: &[u8], chunk: u64, rules: &[Rule], extra: &[&str]) -> (Option<i32>, String, String, Vec<u8>, u64) {
    flash_answered(img, chunk, rules, &[], extra).0
}

type Flashed = (Option<i32>, String, String, Vec<u8>, u64);

/// [`flash_via`] with the board's answers rewritten by `answers`; also returns the chunks the
/// progress file lists as proven.
fn flash_answered(img: &[u8], chunk: u64, rules: &[Rule], answers: &[Answer], extra: &[&str]) -> (Flashed, Vec<usize>) {
    let dir = tempfile::tempdir().unwrap();
    let disk = disk(dir.path(), 1 << 20);
    let path = dir.path().join("image.bin");
    std::fs::write(&path, img).unwrap();
    let mut vm = Qemu::start(Some(&disk));
    let proxy = Proxy::answering(&vm.pty, rules, answers);
    let mut cmd = flash_cmd("qemu-riscv64", &proxy.port, &path, chunk);
    cmd.args(extra);
    let (code, out, err) = finish(spawn(cmd), Duration::from_secs(400));
    let sent = proxy.sent();
    drop(proxy);
    vm.stop();
    let done = proven(&dir.path().join("image.bin.rvflash.json"));
    ((code, out, err, std::fs::read(&disk).unwrap(), sent), done)
}

/// The chunks a progress file lists as proven.
fn proven(p: &Path) -> Vec<usize> {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["proven"].as_array().map(|a| a.iter().filter_map(|x| x.as_u64()).map(|x| x as usize).collect()))
        .unwrap_or_default()
}

fn exact(disk: &[u8], img: &[u8]) -> bool {
    disk[..img.len()] == img[..] && disk[img.len()..].iter().all(|&b| b == 0xEE)
}

#[test]
fn qemu_flash_image_without_gzwrite_falls_back_to_raw_and_sparse() {
    // 3 chunks (one all zeros) and a tail shorter than a sector.
    let mut img = image(3, 16 << 10, 4 << 10, 5);
    img.extend(pty::data(300, 9));
    // The console answers "Unknown command 'gzwrite'": the proxy types gzwrit_ instead.
    let hide = [Rule { from: "gzwrite", to: "gzwrit_", nth: None }];
    let (code, out, err, disk, sent) = flash_via(&img, 16 << 10, &hide, &["--boot", "--boot-timeout", "20"]);
    assert!(exact(&disk, &img), "the disk differs from the image (exit {code:?})\n{err}");
    assert!(err.contains("no gzwrite"), "{err}");
    // The zero chunk did not cross the line: less than the image's size was sent.
    assert!(sent < img.len() as u64, "{sent} bytes sent for a {}-byte image", img.len());
    // The disk holds no operating system: --boot fails with exit 7 and the console's tail.
    assert_eq!(code, Some(7), "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("did not boot") && err.contains("last console lines"), "{err}");
}

#[test]
fn qemu_flash_image_fails_when_a_write_or_a_read_back_is_swallowed() {
    // Two identical chunks: after a swallowed write *and* read of the second, RAM that still
    // held the first chunk's read-back would show the right CRC. It is cleared first.
    // (The first `gzwrite` typed is `help gzwrite`.)
    let one = image(1, 32 << 10, 2 << 10, 3);
    let img = [one.clone(), one].concat();
    for rules in [
        vec![Rule { from: "gzwrite", to: "#zwrite", nth: Some(3) }],
        vec![
            Rule { from: "gzwrite", to: "#zwrite", nth: Some(3) },
            Rule { from: "virtio read", to: "#irtio read", nth: Some(2) },
        ],
    ] {
        let (code, _out, err, _disk, _) = flash_via(&img, 32 << 10, &rules, &[]);
        assert_eq!(code, Some(6), "a swallowed write must fail\n{err}");
        assert!(err.contains("chunk 2/2") && err.contains("0x8000"), "{err}");
        assert!(err.contains("read-back crc32"), "{err}");
    }
}

#[test]
fn qemu_flash_image_survives_a_noisy_line() {
    let img = image(4, 64 << 10, 8 << 10, 17);
    let dir = tempfile::tempdir().unwrap();
    let disk = disk(dir.path(), 1 << 20);
    let path = dir.path().join("image.bin");
    std::fs::write(&path, &img).unwrap();
    let mut vm = Qemu::start(Some(&disk));
    let line = support::noisy::NoisyLine::new(&vm.pty, 3000, 20_000);
    let (code, _out, err) =
        finish(spawn(flash_cmd("qemu-riscv64", &line.port, &path, 64 << 10)), Duration::from_secs(600));
    let flips = line.flips.load(std::sync::atomic::Ordering::Relaxed);
    drop(line);
    vm.stop();
    assert!(flips > 0, "the proxy damaged nothing: the test proves nothing");
    let disk = std::fs::read(&disk).unwrap();
    assert_eq!(code, Some(0), "{flips} bytes damaged\n{err}");
    assert!(exact(&disk, &img), "rvbuild claimed success but the disk differs");
}

/// An image file, a 1 MiB disk and the board that will get the image in chunks of `chunk`
/// bytes, for the tests that interrupt a flash and resume it.
struct Resumable {
    img: Vec<u8>,
    _dir: tempfile::TempDir,
    disk: std::path::PathBuf,
    path: std::path::PathBuf,
    progress_file: std::path::PathBuf,
    vm: Qemu,
}

impl Resumable {
    fn start(chunks: usize, chunk: usize, noisy: usize, seed: u32) -> Resumable {
        let img = image(chunks, chunk, noisy, seed);
        let dir = tempfile::tempdir().unwrap();
        let disk = disk(dir.path(), 1 << 20);
        let path = dir.path().join("image.bin");
        std::fs::write(&path, &img).unwrap();
        let progress_file = dir.path().join("image.bin.rvflash.json");
        let vm = Qemu::start(Some(&disk));
        Resumable { img, _dir: dir, disk, path, progress_file, vm }
    }
}

#[test]
fn qemu_flash_image_resumes_after_the_line_drops() {
    let chunk = 64usize << 10;
    let Resumable { img, _dir, disk, path, progress_file, mut vm } = Resumable::start(6, chunk, 12 << 10, 23);

    // First run: the line disappears (the proxy closes the pty) once two chunks are proven.
    let proxy = Proxy::new(&vm.pty, &[]);
    let child = spawn(flash_cmd("qemu-riscv64", &proxy.port, &path, chunk as u64));
    let end = Instant::now() + Duration::from_secs(300);
    while proven(&progress_file).iter().filter(|&&i| i % 3 != 1).count() < 2 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    // Mid-chunk: the next chunk's gzip member is on its way (its first 2 KiB have crossed).
    let at = proxy.sent();
    while proxy.sent() < at + 2048 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(proxy);
    let (code, _out, err) = finish(child, Duration::from_secs(120));
    eprintln!("first run:\n{err}");
    assert_eq!(code, Some(6), "{err}");
    assert!(err.contains("chunk ") && err.contains("image bytes 0x"), "the error names no chunk and offset:\n{err}");
    let done = proven(&progress_file);
    assert!(done.len() >= 2 && done.len() < 6, "proven before the drop: {done:?}");

    // Second run with --resume: only the chunks not yet proven cross the line.
    let chunks = rvbuild::flash::chunks::cut(&img, chunk as u64, true, true);
    let rest: u64 = chunks.iter().filter(|c| !done.contains(&c.index)).map(|c| c.sent_len()).sum();
    let all: u64 = chunks.iter().map(|c| c.sent_len()).sum();
    let proxy = Proxy::new(&vm.pty, &[]);
    let mut cmd = flash_cmd("qemu-riscv64", &proxy.port, &path, chunk as u64);
    cmd.arg("--resume");
    let (code, out, err) = finish(spawn(cmd), Duration::from_secs(300));
    let sent = proxy.sent();
    drop(proxy);
    vm.stop();
    eprintln!("resumed run:\n{err}");
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains(&format!("{} proven earlier", done.len())), "{out}");
    // Payload of the remaining chunks plus YMODEM framing and commands (~2 KiB per chunk).
    let allowance = rest + 2048 * (6 - done.len() as u64) + 4096;
    assert!(sent <= allowance, "{sent} bytes sent on resume; the chunks left need {rest} (all: {all})");
    assert!(sent < all, "{sent} bytes sent on resume, as much as the whole image's {all}");
    assert!(exact(&std::fs::read(&disk).unwrap(), &img), "the disk differs after --resume");
}

#[test]
fn qemu_flash_image_refuses_chunks_larger_than_the_ram_window() {
    // The load area high up in the 256 MiB of RAM: 1.2 MiB free below U-Boot's reservations
    // cannot hold a 1 MiB chunk twice (load + read-back).
    let img = image(1, 1 << 20, 4096, 31);
    let high = ["--load-addr", "8e600000"];
    let (code, _out, err, disk, sent) = flash_via(&img, 4 << 20, &[], &high);
    assert_eq!(code, Some(6), "{err}");
    assert!(err.contains("does not fit the board's free RAM"), "{err}");
    assert!(err.contains("chunk 1/1 (image bytes 0x0..0x100000)"), "the error names no chunk and offset:\n{err}");
    assert!(disk.iter().all(|&b| b == 0xEE), "the disk was written");
    assert!(sent < 2048, "{sent} bytes sent: only commands should have crossed the line");
    // A chunk size larger than the RAM window is no fault when the image is small: the areas
    // are as large as the largest chunk the image really has.
    let small = image(1, 4096, 1024, 37);
    let (code, _out, err, disk, _) = flash_via(&small, 128 << 20, &[], &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(exact(&disk, &small), "the disk differs from the image");
}

/// `\t65536 bytes, crc 0x1234abcd\r` with the size one sector short.
fn short_size(line: &str) -> String {
    let (head, tail) = line.split_once(" bytes, crc").unwrap_or((line, ""));
    let n: u64 = head.trim().parse().unwrap_or(0);
    format!("\t{} bytes, crc{tail}", n.saturating_sub(512))
}

/// The same line with the CRC's last digit changed.
fn other_crc(line: &str) -> String {
    let t = line.trim_end_matches('\r');
    let last = t.chars().last().unwrap_or('0');
    format!("{}{}\r", &t[..t.len() - 1], if last == '0' { '1' } else { '0' })
}

#[test]
fn qemu_flash_image_fails_when_gzwrite_reports_a_wrong_size_or_crc() {
    // One compressible chunk; the proxy rewrites every answer gzwrite gives.
    let img = image(1, 32 << 10, 2 << 10, 41);
    for (what, rewrite) in [("size", short_size as fn(&str) -> String), ("crc", other_crc)] {
        let answers = [Answer { contains: " bytes, crc 0x", rewrite }];
        let ((code, _out, err, _disk, _), done) = flash_answered(&img, 32 << 10, &[], &answers, &[]);
        assert_eq!(code, Some(6), "wrong {what}: {err}");
        assert!(err.contains("running it again"), "the answer was not asked again ({what}):\n{err}");
        assert!(err.contains("chunk 1/1") && err.contains("image bytes 0x0..0x8000"), "{err}");
        assert!(err.contains("reported") && err.contains("not claimed as written"), "{err}");
        assert!(done.is_empty(), "chunks recorded as proven after a wrong {what}: {done:?}");
    }
}

#[test]
fn qemu_flash_image_board_answering_garbage_fails_then_resumes() {
    let chunk = 32usize << 10;
    let Resumable { img, _dir, disk, path, progress_file, mut vm } = Resumable::start(4, chunk, 4 << 10, 47);

    // Once the first chunk is proven, the board's answers turn to junk (a wrong baud rate, a
    // failing UART).
    let proxy = Proxy::new(&vm.pty, &[]);
    let child = spawn(flash_cmd("qemu-riscv64", &proxy.port, &path, chunk as u64));
    let end = Instant::now() + Duration::from_secs(300);
    while !proven(&progress_file).contains(&0) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    proxy.garble();
    let (code, _out, err) = finish(child, Duration::from_secs(300));
    drop(proxy);
    eprintln!("garbled run:\n{err}");
    assert_eq!(code, Some(6), "{err}");
    let failed: usize = err
        .split("chunk ")
        .filter_map(|t| t.split_once("/4 (image bytes 0x").and_then(|(n, _)| n.parse().ok()))
        .next()
        .unwrap_or_else(|| panic!("the error names no chunk and offset:\n{err}"));
    let done = proven(&progress_file);
    assert!(!done.contains(&(failed - 1)), "chunk {failed} failed but is recorded as proven: {done:?}");
    // Nothing claimed that is not on the disk.
    let now = std::fs::read(&disk).unwrap();
    for &i in &done {
        assert!(
            now[i * chunk..(i + 1) * chunk] == img[i * chunk..(i + 1) * chunk],
            "chunk {} proven, not on disk",
            i + 1
        );
    }

    // The line is clean again: --resume finishes the image.
    let proxy = Proxy::new(&vm.pty, &[]);
    let mut cmd = flash_cmd("qemu-riscv64", &proxy.port, &path, chunk as u64);
    cmd.arg("--resume");
    let (code, out, err) = finish(spawn(cmd), Duration::from_secs(300));
    drop(proxy);
    vm.stop();
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains(&format!("{} proven earlier", done.len())), "{out}");
    assert!(exact(&std::fs::read(&disk).unwrap(), &img), "the disk differs after --resume");
}
