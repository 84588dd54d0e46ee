//! Benchmark: `rvbuild verify` against a `readelf -h` loop over the same corpus of real ELF
//! files of many architectures (Debian packages of foreign architectures plus RISC-V files from
//! the cross compiler, built by scripts/bench-verify-corpus.sh). Prints both times and the
//! ratio, and asserts that rvbuild classifies every file exactly as readelf does (class, data,
//! OS/ABI, type, machine, flags; ELF or not) and that it is at least 50 times faster.
//!
//! Run: `cargo bench --bench verify_bench` (corpus in the target directory, built on first
//! run), or `cargo bench --bench verify_bench -- DIR` to use or build the corpus in DIR.
//!
//! First, the disk image part (`image` below): the whole 64 MiB qemu-riscv64 disk image verified
//! from the inside, against the by-hand way without root (extract the partition, `debugfs
//! rdump` its files, unpack the initramfs with `cpio`, `readelf -h` and `file` on what came out).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

const MIN_ELF_FILES: usize = 2000;
const MIN_MACHINES: usize = 6;
const MIN_RATIO: f64 = 50.0;

/// What identifies an ELF file in `readelf -h`; `None` for files that are not ELF.
type Class = Option<(String, String, String, String, String, u32)>;

fn main() -> ExitCode {
    let corpus = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("verify-corpus"));
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
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench-verify-corpus.sh");
    let status = Command::new("bash")
        .arg(&script)
        .arg(corpus)
        .status()
        .map_err(|e| format!("running {}: {e}", script.display()))?;
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
    if elf_count < MIN_ELF_FILES || machines.len() < MIN_MACHINES {
        return Err(format!("the corpus needs at least {MIN_ELF_FILES} ELF files of {MIN_MACHINES} machines"));
    }

    let started = Instant::now();
    let readelf = readelf_loop(&files)?;
    let readelf_time = started.elapsed();

    let rvbuild_bin = env!("CARGO_BIN_EXE_rvbuild");
    let mut times = Vec::new();
    let mut json = String::new();
    for _ in 0..5 {
        let started = Instant::now();
        let out = Command::new(rvbuild_bin)
            .args(["verify", "--arch", "riscv64", "--json"])
            .arg(&root)
            .output()
            .map_err(|e| format!("running rvbuild: {e}"))?;
        times.push(started.elapsed());
        // 5 = mismatches, expected: the corpus is of many architectures.
        if !matches!(out.status.code(), Some(0 | 5)) {
            return Err(format!("rvbuild verify failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        json = String::from_utf8_lossy(&out.stdout).into_owned();
    }
    times.sort();
    let rvbuild_time = times[times.len() / 2];
    let ours = rvbuild_classes(&json)?;

    let mut differ = 0;
    for f in &files {
        let key = f.display().to_string();
        let theirs = readelf.get(&key).cloned().unwrap_or(None);
        let mine = ours.get(&key).cloned().unwrap_or(None);
        if theirs != mine {
            differ += 1;
            if differ <= 10 {
                eprintln!("DIFFER {key}: readelf {theirs:?}, rvbuild {mine:?}");
            }
        }
    }
    let ratio = readelf_time.as_secs_f64() / rvbuild_time.as_secs_f64();
    println!("readelf -h loop : {:>9.1} ms", ms(readelf_time));
    println!("rvbuild verify  : {:>9.1} ms (median of 5)", ms(rvbuild_time));
    println!("ratio           : {ratio:>9.1}x (goal >= {MIN_RATIO}x)");
    println!("classification  : {} of {} files equal to readelf", files.len() - differ, files.len());
    if differ > 0 {
        return Err(format!("{differ} files are classified differently from readelf"));
    }
    own_arch_checks(rvbuild_bin, &root)?;
    if ratio < MIN_RATIO {
        return Err(format!("rvbuild is only {ratio:.1}x faster than the readelf loop"));
    }
    Ok(())
}

/// Each Debian architecture's files are clean for that architecture, and armel files are all
/// caught (soft-float) when checked for armhf.
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
    for &(dir, spec, clean) in cases {
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
    let mut result = BTreeMap::new();
    for block in text.split("==> ").skip(1) {
        let (path, body) = block.split_once('\n').unwrap_or((block, ""));
        let fields: BTreeMap<&str, &str> =
            body.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim(), v.trim())).collect();
        let class = match (fields.get("Class"), fields.get("Flags")) {
            (Some(class), Some(flags)) => {
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
            _ => None,
        };
        result.insert(path.to_string(), class);
    }
    Ok(result)
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
