//! Benchmark: `rvbuild verify` against readelf and file on the same corpus of real ELF files of
//! many architectures (Debian packages of foreign architectures plus RISC-V files from the cross
//! compiler, built by scripts/bench-verify-corpus.sh; quick mode: this machine's own and cross
//! libraries, nothing downloaded). The rivals, each timed on every file of the corpus:
//! - `readelf -h`, one process per file (a shell loop);
//! - `readelf -h`, batched: `xargs -0 readelf -h` (as few processes as ARG_MAX allows), and the
//!   same spread over every core (`xargs -P CORES`, as rvbuild uses every core);
//! - `file -b`, batched over every core the same way.
//!
//! - the floor: this process walking the tree and reading each file's first 64 bytes on every
//!   core, without decoding anything: the batched readelf divided by it bounds the ratio any
//!   tool that reads every file could reach.
//!
//! Asserts that rvbuild classifies every file exactly as the batched readelf does (class,
//! data, OS/ABI, type, machine, flags; ELF or not) and prints the ratios; the goal is >= 50x
//! over the faster batched readelf (checked in full mode only: quick mode never fails on a
//! timing).
//!
//! Run: `cargo bench --bench verify_bench` (corpus in the target directory, built on first
//! run), or `cargo bench --bench verify_bench -- DIR` to use or build the corpus in DIR.
//!
//! First, the disk image part (`image` below): the whole 64 MiB qemu-riscv64 disk image verified
//! from the inside, against the by-hand way without root (extract the partition, `debugfs
//! rdump` its files, unpack the initramfs with `cpio`, `readelf -h` and `file` on what came out).

#[path = "common/quick.rs"]
mod quick;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const MIN_RATIO: f64 = 50.0;

/// What identifies an ELF file in `readelf -h`; `None` for files that are not ELF.
type Class = Option<(String, String, String, String, String, u32)>;

fn main() -> ExitCode {
    quick::banner("verify_bench");
    let default_dir = if quick::on() { "verify-corpus-quick" } else { "verify-corpus" };
    let corpus = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join(default_dir));
    if let Err(e) = image::bench() {
        eprintln!("verify_bench (disk image): {e}");
        return ExitCode::FAILURE;
    }
    match bench(&corpus) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("verify_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bench(corpus: &Path) -> Result<(), String> {
    let quick = quick::on();
    // Full: the Debian corpus; quick: a few hundred local files of 3 machines.
    let (min_elf, min_machines, repeats) = if quick { (100, 3, 1) } else { (2000, 6, 5) };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench-verify-corpus.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(&script);
    if quick {
        cmd.arg("--quick");
    }
    let status = cmd.arg(corpus).status().map_err(|e| format!("running {}: {e}", script.display()))?;
    if !status.success() {
        return Err(format!("{} failed ({status})", script.display()));
    }
    let root = corpus.join("files");
    let mut files = Vec::new();
    walk(&root, &mut files)?;
    files.sort();

    let mut machines = BTreeSet::new();
    let mut elf_count = 0;
    for f in &files {
        if let Some(m) = elf_machine(f) {
            elf_count += 1;
            machines.insert(m);
        }
    }
    println!("corpus: {} files, {elf_count} ELF, {} machines {machines:?}", files.len(), machines.len());
    if elf_count < min_elf || machines.len() < min_machines {
        return Err(format!("the corpus needs at least {min_elf} ELF files of {min_machines} machines"));
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let list = corpus.join("files.list");
    let mut nul_list = Vec::new();
    for f in &files {
        nul_list.extend_from_slice(f.as_os_str().as_encoded_bytes());
        nul_list.push(0);
    }
    std::fs::write(&list, nul_list).map_err(|e| format!("{}: {e}", list.display()))?;
    let per_batch = files.len().div_ceil(cores).to_string();
    let xargs = |parallel: bool, tool: &[&str]| {
        let mut c = Command::new("xargs");
        c.arg("-0").arg("-a").arg(&list);
        if parallel {
            c.args(["-P", &cores.to_string(), "-n", &per_batch]);
        }
        c.args(tool);
        c
    };

    // readelf prints `File: NAME` before each file's output only when given two files or
    // more: /dev/null first (refused on stderr) makes every batch print them.
    let (loop_time, looped) = timed(1, || readelf_loop(&files))?;
    let (batched_time, batched_text) = timed(repeats, || run_text(xargs(false, &["readelf", "-h", "/dev/null"])))?;
    let (parallel_time, parallel_text) = timed(repeats, || run_text(xargs(true, &["readelf", "-h", "/dev/null"])))?;
    let (file_time, file_text) = timed(repeats, || run_text(xargs(true, &["file", "-b"])))?;
    let batched = parse_batched(&batched_text);
    // The floor for any tool that looks at every file: walk the tree, open each file, read its
    // first 64 bytes (an ELF header), close it; in this process, no start-up, on every core.
    let (floor_time, floor_files) = timed(repeats, || floor(&root, cores))?;
    if floor_files != files.len() {
        return Err(format!("the floor walk saw {floor_files} files, the corpus has {}", files.len()));
    }

    let rvbuild_bin = env!("CARGO_BIN_EXE_rvbuild");
    let (rvbuild_time, json) = timed(repeats, || {
        let out = Command::new(rvbuild_bin)
            .args(["verify", "--arch", "riscv64", "--json"])
            .arg(&root)
            .output()
            .map_err(|e| format!("running rvbuild: {e}"))?;
        // 5 = mismatches, expected: the corpus is of many architectures.
        if !matches!(out.status.code(), Some(0 | 5)) {
            return Err(format!("rvbuild verify failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    })?;
    let ours = rvbuild_classes(&json)?;

    // What every rival saw: the batched readelf agrees with the per-file loop, the parallel
    // one printed the same bytes (interleaved in blocks: only their number is comparable),
    // file printed a line per file.
    let class_of = |m: &BTreeMap<String, Class>, f: &Path| m.get(&f.display().to_string()).cloned().flatten();
    if let Some(f) = files.iter().find(|f| class_of(&batched, f) != class_of(&looped, f)) {
        return Err(format!("the batched readelf and the per-file readelf loop disagree on {}", f.display()));
    }
    let file_lines = file_text.lines().count();
    if parallel_text.len() != batched_text.len() || file_lines != files.len() {
        return Err(format!(
            "the parallel readelf printed {} bytes (the batched one {}), file printed {file_lines} lines (want {})",
            parallel_text.len(),
            batched_text.len(),
            files.len()
        ));
    }
    let mut differ = 0;
    for f in &files {
        let key = f.display().to_string();
        let theirs = batched.get(&key).cloned().unwrap_or(None);
        let mine = ours.get(&key).cloned().unwrap_or(None);
        if theirs != mine {
            differ += 1;
            if differ <= 10 {
                eprintln!("DIFFER {key}: readelf {theirs:?}, rvbuild {mine:?}");
            }
        }
    }
    let best_readelf = batched_time.min(parallel_time);
    let ratio = best_readelf.as_secs_f64() / rvbuild_time.as_secs_f64();
    let of = if repeats > 1 { format!(" (median of {repeats})") } else { String::new() };
    let line = |label: &str, d: Duration, note: &str| {
        let x = d.as_secs_f64() / rvbuild_time.as_secs_f64();
        println!("{label:<44}: {:>9.1} ms {x:>7.1}x rvbuild's time{note}", ms(d));
    };
    line("readelf -h, one process per file", loop_time, "");
    line("readelf -h, batched (xargs -0)", batched_time, &of);
    line(&format!("readelf -h, batched on {cores} cores (xargs -P {cores})"), parallel_time, &of);
    line(&format!("file -b, batched on {cores} cores (xargs -P {cores})"), file_time, &of);
    println!("{:<44}: {:>9.1} ms{of}", "rvbuild verify", ms(rvbuild_time));
    line(&format!("floor: walk + open + read 64 B, {cores} threads"), floor_time, &of);
    let bound = best_readelf.as_secs_f64() / floor_time.as_secs_f64();
    println!("ratio over the faster batched readelf        : {ratio:>9.1}x (goal >= {MIN_RATIO}x)");
    println!("best possible ratio (readelf / the floor)    : {bound:>9.1}x: no tool that reads every file beats it");
    println!("classification  : {} of {} files equal to readelf", files.len() - differ, files.len());
    if differ > 0 {
        return Err(format!("{differ} files are classified differently from readelf"));
    }
    own_arch_checks(rvbuild_bin, &root)?;
    if ratio < MIN_RATIO && !quick {
        return Err(format!(
            "goal not met: rvbuild is {ratio:.1}x faster than the batched readelf, not {MIN_RATIO}x \
             (reading each file's header without decoding it, in-process, bounds the ratio at {bound:.1}x)"
        ));
    }
    Ok(())
}

/// Walks `root` and reads the first 64 bytes of every regular file on `threads` threads; the
/// number of files read.
fn floor(root: &Path, threads: usize) -> Result<usize, String> {
    let mut files = Vec::new();
    walk(root, &mut files)?;
    let per = files.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = files
            .chunks(per)
            .map(|part| {
                scope.spawn(move || {
                    let mut head = [0u8; 64];
                    part.iter().filter(|f| std::fs::File::open(f).and_then(|mut h| h.read(&mut head)).is_ok()).count()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().map_err(|_| "a floor thread panicked".to_string())).sum()
    })
}

/// Runs `f` `n` times; the median time and the last result.
fn timed<T>(n: usize, mut f: impl FnMut() -> Result<T, String>) -> Result<(Duration, T), String> {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..n.max(1) {
        let t = Instant::now();
        last = Some(f()?);
        times.push(t.elapsed());
    }
    times.sort();
    let value = last.ok_or("no run")?;
    Ok((times[times.len() / 2], value))
}

/// Runs `cmd` and returns its standard output (standard error is discarded: readelf complains
/// there about every file that is not ELF).
fn run_text(mut cmd: Command) -> Result<String, String> {
    let out = cmd.stderr(Stdio::null()).output().map_err(|e| format!("running {cmd:?}: {e}"))?;
    // xargs exits 123 when a command failed for some file (readelf does for non-ELF files).
    if !matches!(out.status.code(), Some(0 | 123)) {
        return Err(format!("{cmd:?} failed ({})", out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Each architecture directory of the corpus is clean for that architecture, and armel files
/// are all caught (soft-float) when checked for armhf.
fn own_arch_checks(bin: &str, root: &Path) -> Result<(), String> {
    let cases: &[(&str, &str, bool)] = &[
        ("amd64", "x86_64", true),
        ("i386", "i386", true),
        ("arm64", "aarch64", true),
        ("armhf", "arm,abi=eabihf", true),
        ("armel", "arm,abi=eabi", true),
        ("riscv64/lib", "riscv64,abi=lp64d", true),
        ("armel", "arm,abi=eabihf", false),
    ];
    let mut ran = 0;
    for &(dir, spec, clean) in cases {
        // The quick corpus has only some of the architectures.
        if !root.join(dir).is_dir() {
            continue;
        }
        ran += 1;
        let out = Command::new(bin)
            .args(["verify", "--arch", spec, "--json"])
            .arg(root.join(dir))
            .output()
            .map_err(|e| format!("running rvbuild: {e}"))?;
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).map_err(|e| format!("rvbuild JSON for {dir}: {e}"))?;
        let (checked, mismatched) = (&v["checked"], &v["mismatched"]);
        println!("{dir:<12} as {spec:<18}: {checked} checked, {mismatched} mismatched");
        let ok = if clean {
            out.status.code() == Some(0)
        } else {
            checked == mismatched && checked.as_u64().unwrap_or(0) > 0
        };
        if !ok {
            return Err(format!(
                "{dir} checked as {spec}: expected {}",
                if clean { "clean" } else { "every file mismatched" }
            ));
        }
    }
    if ran == 0 {
        return Err(format!("no architecture directory to check under {}", root.display()));
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Regular files under `dir`, symbolic links not followed.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in rd {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let ty = entry.file_type().map_err(|e| e.to_string())?;
        if ty.is_dir() {
            walk(&entry.path(), out)?;
        } else if ty.is_file() {
            out.push(entry.path());
        }
    }
    Ok(())
}

fn elf_machine(path: &Path) -> Option<u16> {
    let mut head = [0u8; 20];
    std::fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
    if &head[..4] != b"\x7fELF" {
        return None;
    }
    let m = [head[18], head[19]];
    Some(if head[5] == 2 { u16::from_be_bytes(m) } else { u16::from_le_bytes(m) })
}

/// `for f in FILES; do readelf -h "$f"; done`, parsed per file.
fn readelf_loop(files: &[PathBuf]) -> Result<BTreeMap<String, Class>, String> {
    let out = Command::new("bash")
        .arg("-c")
        .arg(r#"for f in "$@"; do echo "==> $f"; readelf -h "$f" 2>&1; done"#)
        .arg("loop")
        .args(files)
        .output()
        .map_err(|e| format!("running the readelf loop: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .split("==> ")
        .skip(1)
        .map(|block| {
            let (path, body) = block.split_once('\n').unwrap_or((block, ""));
            (path.to_string(), parse_header(body))
        })
        .collect())
}

/// The output of one readelf over many files (`File: NAME`, then the ELF header or nothing for
/// a file that is not ELF), parsed per file.
fn parse_batched(text: &str) -> BTreeMap<String, Class> {
    text.split("\nFile: ")
        .skip(1)
        .map(|block| {
            let (path, body) = block.split_once('\n').unwrap_or((block, ""));
            (path.to_string(), parse_header(body))
        })
        .collect()
}

/// One file's `readelf -h` output; `None` when it is not an ELF header.
fn parse_header(body: &str) -> Class {
    let fields: BTreeMap<&str, &str> =
        body.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim(), v.trim())).collect();
    let (class, flags) = (fields.get("Class")?, fields.get("Flags")?);
    let hex = flags.split(',').next().unwrap_or("").trim_start_matches("0x");
    let data = fields.get("Data").copied().unwrap_or("");
    let data = if data.contains("little") { "little" } else { "big" };
    Some((
        class.to_string(),
        data.to_string(),
        osabi_number(fields.get("OS/ABI").copied().unwrap_or("")),
        fields.get("Type").and_then(|t| t.split_whitespace().next()).unwrap_or("").to_string(),
        fields.get("Machine").copied().unwrap_or("").to_string(),
        u32::from_str_radix(hex, 16).unwrap_or(u32::MAX),
    ))
}

fn osabi_number(name: &str) -> String {
    match name {
        "UNIX - System V" => "0".into(),
        "UNIX - GNU" => "3".into(),
        other => format!("readelf:{other}"),
    }
}

fn rvbuild_classes(json: &str) -> Result<BTreeMap<String, Class>, String> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("rvbuild JSON: {e}"))?;
    let mut result = BTreeMap::new();
    for f in v["files"].as_array().ok_or("rvbuild JSON has no files")? {
        let path = f["path"].as_str().unwrap_or_default().to_string();
        let e = &f["elf"];
        let class = if e.is_object() {
            Some((
                e["class"].as_str().unwrap_or_default().to_string(),
                e["data"].as_str().unwrap_or_default().to_string(),
                e["osabi"].to_string(),
                e["type_name"].as_str().unwrap_or_default().to_string(),
                e["machine_name"].as_str().unwrap_or_default().to_string(),
                e["flags"].as_u64().unwrap_or(u64::MAX) as u32,
            ))
        } else {
            None
        };
        result.insert(path, class);
    }
    Ok(result)
}

/// The whole 64 MiB qemu-riscv64 disk image, verified from the inside.
mod image {
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::time::{Duration, Instant};

    /// Verifying the whole image must stay well under this.
    const GOAL: Duration = Duration::from_secs(1);

    fn quick() -> bool {
        std::env::var("RVBUILD_BENCH_QUICK").is_ok_and(|v| v == "1")
    }

    fn sh(script: &str, args: &[&Path]) -> Result<(), String> {
        let out = Command::new("bash")
            .arg("-euo")
            .arg("pipefail")
            .arg("-c")
            .arg(script)
            .arg("bench")
            .args(args)
            .output()
            .map_err(|e| format!("bash: {e}"))?;
        if out.status.success() { Ok(()) } else { Err(format!("{script}: {}", String::from_utf8_lossy(&out.stderr))) }
    }

    /// The image: `RVBUILD_BENCH_IMAGE`, else the shared qemu-riscv64 build of the tests, else
    /// one assembled here with the same layout (MBR, ext4 at 1 MiB with a kernel Image, an
    /// initramfs of RISC-V ELF files and extlinux.conf).
    fn find_or_make(dir: &Path) -> Result<(PathBuf, &'static str), String> {
        if let Some(p) = std::env::var_os("RVBUILD_BENCH_IMAGE") {
            return Ok((PathBuf::from(p), "RVBUILD_BENCH_IMAGE"));
        }
        let shared = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rvbuild-shared/qemu-riscv64/manifest.json");
        if let Ok(text) = std::fs::read_to_string(&shared)
            && let Ok(m) = serde_json::from_str::<serde_json::Value>(&text)
            && let Some(p) = m["artifacts"]["disk.img"].as_str()
            && Path::new(p).is_file()
        {
            return Ok((PathBuf::from(p), "the qemu-riscv64 build"));
        }
        let img = dir.join("disk.img");
        sh(
            r#"d=$1; mkdir -p "$d/boot/extlinux" "$d/initrd/bin" "$d/initrd/lib"
            # A 3 MiB RISC-V kernel Image: its header and filler.
            head -c 3M /dev/urandom > "$d/boot/Image"
            head -c 64 /dev/zero | dd of="$d/boot/Image" conv=notrunc status=none
            printf 'RSC\005' | dd of="$d/boot/Image" bs=1 seek=56 conv=notrunc status=none
            for f in /usr/riscv64-linux-gnu/lib/*.so*; do [ -f "$f" ] && cp "$f" "$d/initrd/lib/"; done
            cp "$d/initrd/lib/libc.so.6" "$d/initrd/init"
            (cd "$d/initrd" && find . | cpio -o -H newc --quiet | gzip -1) > "$d/boot/initramfs.cpio.gz"
            printf 'label rv\n kernel /Image\n initrd /initramfs.cpio.gz\n' > "$d/boot/extlinux/extlinux.conf"
            truncate -s 63M "$d/part.ext4"
            mkfs.ext4 -q -F -O ^has_journal -d "$d/boot" "$d/part.ext4"
            truncate -s 64M "$d/disk.img"
            printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk --quiet "$d/disk.img"
            dd if="$d/part.ext4" of="$d/disk.img" bs=512 seek=2048 conv=notrunc,sparse status=none"#,
            &[dir],
        )?;
        Ok((img, "assembled here (same layout as qemu-riscv64's)"))
    }

    /// The by-hand way without root: partition out with dd, its files out with debugfs, the
    /// initramfs unpacked with cpio, then `readelf -h` on the ELF files and `file` on the rest.
    fn by_hand(img: &Path, work: &Path) -> Result<Duration, String> {
        let _ = std::fs::remove_dir_all(work);
        std::fs::create_dir_all(work).map_err(|e| e.to_string())?;
        let started = Instant::now();
        sh(
            r#"img=$1; w=$2
            start=$(sfdisk --dump "$img" | awk -F'[=,]' '/start=/{gsub(/ /,"",$2); print $2; exit}')
            dd if="$img" of="$w/p1" bs=512 skip="$start" status=none
            mkdir "$w/fs" "$w/initrd"
            debugfs -R "rdump / $w/fs" "$w/p1" >/dev/null 2>&1
            (cd "$w/initrd" && zcat "$w/fs/initramfs.cpio.gz" | cpio -id --quiet)
            find "$w/fs" "$w/initrd" -type f -print0 | xargs -0 file -b >/dev/null
            find "$w/initrd" -type f -print0 | xargs -0 readelf -h >/dev/null 2>&1 || true"#,
            &[img, work],
        )?;
        Ok(started.elapsed())
    }

    pub(super) fn bench() -> Result<(), String> {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("verify-image-bench");
        std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        let (img, source) = find_or_make(&tmp)?;
        let size = std::fs::metadata(&img).map_err(|e| format!("{}: {e}", img.display()))?.len();
        let runs = if quick() { 1 } else { 5 };
        let bin = env!("CARGO_BIN_EXE_rvbuild");
        let mut ours = Vec::new();
        let mut checked = 0;
        for _ in 0..runs {
            let started = Instant::now();
            let out = Command::new(bin)
                .args(["verify", "--arch", "riscv64", "--json"])
                .arg(&img)
                .output()
                .map_err(|e| format!("running rvbuild: {e}"))?;
            ours.push(started.elapsed());
            // The assembled image holds glibc's libraries: some may differ from lp64d (exit 5).
            if !matches!(out.status.code(), Some(0 | 5)) {
                return Err(format!("rvbuild verify {}: {}", img.display(), String::from_utf8_lossy(&out.stderr)));
            }
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("JSON: {e}"))?;
            checked = v["checked"].as_u64().unwrap_or(0);
        }
        if checked < 3 {
            return Err(format!("only {checked} things checked inside {}", img.display()));
        }
        let mut theirs = Vec::new();
        for _ in 0..runs {
            theirs.push(by_hand(&img, &tmp.join("by-hand"))?);
        }
        ours.sort();
        theirs.sort();
        let (ours, theirs) = (ours[ours.len() / 2], theirs[theirs.len() / 2]);
        println!("disk image      : {} ({} MiB), {source}", img.display(), size >> 20);
        println!("rvbuild verify  : {:>9.1} ms, {checked} checked inside (median of {runs})", super::ms(ours));
        println!("dd+debugfs+cpio+file+readelf: {:>9.1} ms (median of {runs})", super::ms(theirs));
        println!("ratio           : {:>9.1}x", theirs.as_secs_f64() / ours.as_secs_f64());
        if ours >= GOAL {
            println!("NOTE: verifying the image took {:.0} ms, the goal is well under {GOAL:?}", super::ms(ours));
        }
        Ok(())
    }
}
