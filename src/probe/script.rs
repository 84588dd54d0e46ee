//! The probe's one round trip: a POSIX sh script run on the builder that prints `key=value`
//! lines (Nix version and settings, CPU, load, free store space, binfmt_misc handlers, and the
//! benchmark runs), and the pure parser of what it printed.
//!
//! The script contains neither single quotes nor backslashes, so wrapped in `sh -c '…'` it
//! reaches `sh` unchanged whatever the login shell of the SSH user is (bash, zsh, fish, …).

/// What the probe script printed, parsed. Missing values are `None`/empty; the caller turns
/// them into per-part errors.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScriptOutput {
    /// The marker line was seen (the script ran at all).
    pub ran: bool,
    /// `nix-store --version`'s line, e.g. `nix-store (Nix) 2.8.0`.
    pub nix_version_line: Option<String>,
    /// Why `nix-store --version` failed.
    pub nix_error: Option<String>,
    /// Where `system`/`extra-platforms` came from: `nix-show-config` or the nix.conf path.
    pub config_source: Option<String>,
    pub system: Option<String>,
    pub extra_platforms: Vec<String>,
    pub system_features: Option<Vec<String>>,
    pub uname_m: Option<String>,
    pub cores: Option<u32>,
    pub load1: Option<f64>,
    pub free_disk_kib: Option<u64>,
    /// binfmt_misc's global `status` (`enabled`/`disabled`), None when it is not mounted.
    pub binfmt_status: Option<String>,
    pub binfmt: Vec<BinfmtEntry>,
    pub benches: Vec<BenchRun>,
    /// Target-system userlands (scripts/setup-host.sh) found below the same root as here:
    /// (Debian arch, sha256 of the stamp file).
    pub userlands: Vec<(String, String)>,
    /// Cross compilers (`riscv64-linux-gnu-gcc`, `aarch64-linux-gnu-gcc`) and their identity:
    /// the `--version` line, then the sha256 of the driver and of `cc1`, one per line (the
    /// split compile's check, `build::split::identity_command`).
    pub cross_compilers: Vec<(String, String)>,
}

/// One registered binfmt_misc handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinfmtEntry {
    /// The entry's name (`qemu-riscv64`).
    pub name: String,
    pub enabled: bool,
    pub offset: u32,
    /// The magic as hex, `none` for extension-based entries.
    pub magic: String,
    /// The interpreter is an executable file in the probing user's view (an `F`-flagged
    /// handler works even when it is not).
    pub interpreter_present: bool,
    pub interpreter: String,
}

/// One run of the benchmark binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchRun {
    pub system: String,
    pub outcome: BenchOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BenchOutcome {
    Ran {
        rounds: u32,
        ns: u64,
        checksum: String,
    },
    /// Exit status and the first lines of output (`Exec format error`, a qemu crash, …).
    Failed {
        status: i32,
        output: String,
    },
}

const SCRIPT: &str = r#"
PATH="$PATH:/nix/var/nix/profiles/default/bin:/run/current-system/sw/bin:$HOME/.nix-profile/bin"
export PATH
echo rvbuild_probe=1
if v=$(nix-store --version 2>&1); then echo "nix_version=$v"; else echo "nix_error=$(echo "$v" | head -n 1)"; fi
cfg=$(nix --extra-experimental-features nix-command show-config 2>/dev/null) || cfg=$(nix show-config 2>/dev/null) || cfg=
if [ -n "$cfg" ]; then
  echo config_source=nix-show-config
  printf "%s" "$cfg" | sed -n -e "s/^system = /system=/p" -e "s/^extra-platforms = /extra_platforms=/p" -e "s/^system-features = /system_features=/p"
else
  conf="${NIX_CONF_DIR:-/etc/nix}/nix.conf"
  echo "config_source=$conf"
  if [ -r "$conf" ]; then
    sed -n -e "s/^[[:space:]]*system[[:space:]]*=[[:space:]]*/system=/p" -e "s/^[[:space:]]*extra-platforms[[:space:]]*=[[:space:]]*/extra_platforms=/p" -e "s/^[[:space:]]*system-features[[:space:]]*=[[:space:]]*/system_features=/p" "$conf"
  fi
fi
echo "uname_m=$(uname -m)"
echo "cores=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null)"
if [ -r /proc/loadavg ]; then echo "loadavg=$(cat /proc/loadavg)"; fi
df -Pk "${NIX_STORE_DIR:-/nix/store}" 2>/dev/null | tail -n 1 | { read -r fs size used avail rest; echo "disk_free_kb=$avail"; }
bf=/proc/sys/fs/binfmt_misc
if [ -r "$bf/status" ]; then
  echo "binfmt_status=$(cat "$bf/status")"
  for f in "$bf"/*; do
    n="${f##*/}"
    case "$n" in register|status) continue ;; esac
    [ -r "$f" ] || continue
    st=$(head -n 1 "$f")
    interp=$(sed -n "s/^interpreter //p" "$f")
    off=$(sed -n "s/^offset //p" "$f")
    magic=$(sed -n "s/^magic //p" "$f")
    ok=0
    if [ -n "$interp" ] && [ -x "$interp" ]; then ok=1; fi
    echo "binfmt=$n $st ${off:-0} ${magic:-none} $ok $interp"
  done
fi
if [ -n "$USERLAND_ROOT" ]; then
  for d in "$USERLAND_ROOT"/userland-*; do
    [ -r "$d/.rvbuild-userland" ] && [ -x "$d/usr/bin/gcc" ] || continue
    h=$(sha256sum < "$d/.rvbuild-userland" 2>/dev/null | cut -d " " -f 1)
    [ -n "$h" ] && echo "userland=${d##*/userland-} $h"
  done
fi
for c in riscv64-linux-gnu-gcc aarch64-linux-gnu-gcc; do
  p=$(command -v "$c" 2>/dev/null) || continue
  v=$("$c" --version 2>/dev/null | head -n 1)
  h=$(sha256sum "$(readlink -f "$p")" "$("$c" -print-prog-name=cc1)" 2>/dev/null | cut -d " " -f 1)
  echo "cross_compiler=$c" $h "$v"
done
to=
if command -v timeout >/dev/null 2>&1; then to="timeout $BENCH_TIMEOUT"; fi
run_bench() {
  if out=$($to "$2" "$3" 2>&1); then
    echo "bench=$1 $out"
  else
    rc=$?
    echo "bench_failed=$1 $rc $(echo "$out" | head -n 3 | tr -s "[:space:]" " ")"
  fi
}
case "$(uname -m)" in
  x86_64|amd64) native=x86_64-linux ;;
  aarch64|arm64) native=aarch64-linux ;;
  riscv64) native=riscv64-linux ;;
  *) native=none ;;
esac
for b in $BENCHES; do
  if [ "${b%%:*}" = "$native" ]; then
    run_bench "${b%%:*}" "${b#*:}" "$NATIVE_ROUNDS"
    run_bench "${b%%:*}" "${b#*:}" "$EMULATED_ROUNDS"
  fi
done
for b in $BENCHES; do
  if [ "${b%%:*}" != "$native" ]; then run_bench "${b%%:*}" "${b#*:}" "$EMULATED_ROUNDS"; fi
done
echo rvbuild_probe_done=1
"#;

/// How the benchmark runs: binaries by system (paths on the builder), rounds natively (run
/// once with these and once with `emulated_rounds`, for the checksum), rounds under emulation,
/// and a per-run time limit (applied where `timeout` exists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchPlan {
    pub binaries: Vec<(String, String)>,
    pub native_rounds: u32,
    pub emulated_rounds: u32,
    pub timeout_s: u32,
}

fn safe(s: &str, extra: &[char]) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c) || extra.contains(&c))
}

/// The command to exec on the builder. Binaries whose system or path have characters outside
/// store-path syntax are left out (they could not come from a store anyway).
pub fn command(plan: Option<&BenchPlan>) -> String {
    let mut vars = String::new();
    match plan {
        Some(p) => {
            let list: Vec<String> = p
                .binaries
                .iter()
                .filter(|(sys, path)| safe(sys, &[]) && safe(path, &['/', '=']))
                .map(|(sys, path)| format!("{sys}:{path}"))
                .collect();
            vars.push_str(&format!(
                "BENCHES=\"{}\"; NATIVE_ROUNDS={}; EMULATED_ROUNDS={}; BENCH_TIMEOUT={}\n",
                list.join(" "),
                p.native_rounds.max(1),
                p.emulated_rounds.max(1),
                p.timeout_s.max(1)
            ));
        }
        None => vars.push_str("BENCHES=; NATIVE_ROUNDS=1; EMULATED_ROUNDS=1; BENCH_TIMEOUT=1\n"),
    }
    // The userlands are looked for where this machine keeps its own: target-system derivations
    // name that path, so a builder must have them there too.
    let root = crate::builders::userland::root();
    let root = root.to_string_lossy();
    if safe(&root, &['/']) {
        vars.push_str(&format!("USERLAND_ROOT={root}\n"));
    } else {
        vars.push_str("USERLAND_ROOT=\n");
    }
    format!("sh -c '{vars}{SCRIPT}'")
}

fn words(v: &str) -> Vec<String> {
    v.split_whitespace().map(str::to_string).collect()
}

/// Parses the script's stdout. Never fails: unknown or malformed lines are skipped, so a value
/// that cannot be read shows up as missing.
pub fn parse(stdout: &str) -> ScriptOutput {
    let mut o = ScriptOutput::default();
    for line in stdout.lines() {
        let Some((key, value)) = line.split_once('=') else { continue };
        let value = value.trim();
        match key {
            "rvbuild_probe" => o.ran = true,
            "nix_version" if !value.is_empty() => o.nix_version_line = Some(value.to_string()),
            "nix_error" => o.nix_error = Some(value.to_string()),
            "config_source" => o.config_source = Some(value.to_string()),
            "system" if !value.is_empty() => o.system = Some(value.to_string()),
            "extra_platforms" => o.extra_platforms = words(value),
            "system_features" => o.system_features = Some(words(value)),
            "uname_m" if !value.is_empty() => o.uname_m = Some(value.to_string()),
            "cores" => o.cores = value.parse().ok().filter(|&n| n > 0),
            "loadavg" => {
                o.load1 = value.split_whitespace().next().and_then(|l| l.parse().ok()).filter(|l: &f64| l.is_finite())
            }
            "disk_free_kb" => o.free_disk_kib = value.parse().ok(),
            "binfmt_status" => o.binfmt_status = Some(value.to_string()),
            "userland" => {
                if let Some((arch, id)) = value.split_once(' ')
                    && safe(arch, &[])
                    && id.len() == 64
                    && id.bytes().all(|b| b.is_ascii_hexdigit())
                {
                    o.userlands.push((arch.to_string(), id.to_string()));
                }
            }
            "cross_compiler" => {
                let mut it = value.splitn(4, ' ');
                let (name, driver, cc1, version) = (it.next(), it.next(), it.next(), it.next());
                let hex = |h: &str| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit());
                if let (Some(name), Some(driver), Some(cc1), Some(version)) = (name, driver, cc1, version)
                    && safe(name, &[])
                    && hex(driver)
                    && hex(cc1)
                {
                    o.cross_compilers.push((name.to_string(), format!("{}\n{driver}\n{cc1}", version.trim())));
                }
            }
            "binfmt" => {
                if let Some(e) = parse_binfmt(value) {
                    o.binfmt.push(e);
                }
            }
            "bench" => {
                if let Some(b) = parse_bench(value) {
                    o.benches.push(b);
                }
            }
            "bench_failed" => {
                let mut it = value.splitn(3, ' ');
                if let (Some(system), Some(status)) = (it.next(), it.next()) {
                    o.benches.push(BenchRun {
                        system: system.to_string(),
                        outcome: BenchOutcome::Failed {
                            status: status.parse().unwrap_or(-1),
                            output: it.next().unwrap_or("").trim().to_string(),
                        },
                    });
                }
            }
            _ => {}
        }
    }
    o
}

/// `NAME STATE OFFSET MAGIC PRESENT INTERPRETER`
fn parse_binfmt(v: &str) -> Option<BinfmtEntry> {
    let mut it = v.split_whitespace();
    let name = it.next()?.to_string();
    let enabled = it.next()? == "enabled";
    let offset = it.next()?.parse().ok()?;
    let magic = it.next()?.to_ascii_lowercase();
    let interpreter_present = it.next()? == "1";
    let interpreter = it.collect::<Vec<_>>().join(" ");
    Some(BinfmtEntry { name, enabled, offset, magic, interpreter_present, interpreter })
}

/// `SYSTEM rounds=R ns=T checksum=C`
fn parse_bench(v: &str) -> Option<BenchRun> {
    let mut it = v.split_whitespace();
    let system = it.next()?.to_string();
    let (mut rounds, mut ns, mut checksum) = (None, None, None);
    for kv in it {
        match kv.split_once('=') {
            Some(("rounds", r)) => rounds = r.parse().ok(),
            Some(("ns", n)) => ns = n.parse().ok(),
            Some(("checksum", c)) => checksum = Some(c.to_string()),
            _ => {}
        }
    }
    let (rounds, ns, checksum) = (rounds?, ns?, checksum?);
    (rounds > 0 && ns > 0).then_some(BenchRun { system, outcome: BenchOutcome::Ran { rounds, ns, checksum } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_survives_single_quoting() {
        assert!(!SCRIPT.contains('\''), "a single quote would end the sh -c argument");
        assert!(!SCRIPT.contains('\\'), "backslashes differ between shells' single quotes");
        let plan = BenchPlan {
            binaries: vec![
                ("x86_64-linux".into(), "/nix/store/abc-rvbuild-probe-bench-x86_64-linux/bin/probe-bench".into()),
                ("evil'".into(), "/x".into()),
                ("riscv64-linux".into(), "/tmp/a b".into()),
            ],
            native_rounds: 24,
            emulated_rounds: 6,
            timeout_s: 300,
        };
        let cmd = command(Some(&plan));
        assert_eq!(cmd.matches('\'').count(), 2, "only the wrapping quotes");
        assert!(
            cmd.contains("BENCHES=\"x86_64-linux:/nix/store/abc-rvbuild-probe-bench-x86_64-linux/bin/probe-bench\";")
        );
        assert!(cmd.contains("NATIVE_ROUNDS=24; EMULATED_ROUNDS=6; BENCH_TIMEOUT=300"));
        assert!(command(None).contains("BENCHES=;"));
    }

    #[test]
    fn parses_a_full_probe() {
        let out = "\
rvbuild_probe=1
nix_version=nix-store (Nix) 2.8.0
config_source=nix-show-config
extra_platforms=i686-linux x86_64-v1-linux
system=x86_64-linux
system_features=benchmark big-parallel kvm
uname_m=x86_64
cores=2
loadavg=0.11 0.58 1.04 1/88 8125
disk_free_kb=29867900
binfmt_status=enabled
userland=riscv64 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
userland=arm64 not-a-hash
userland=bad'arch 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
binfmt=qemu-riscv64 enabled 0 7f454c460201010000000000000000000200f300 1 /usr/libexec/qemu-binfmt/riscv64-binfmt-P
binfmt=jar disabled 0 none 0
cross_compiler=riscv64-linux-gnu-gcc 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef riscv64-linux-gnu-gcc (Debian 12.2.0-14) 12.2.0
cross_compiler=aarch64-linux-gnu-gcc not-a-hash 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef gcc 12
bench=x86_64-linux rounds=24 ns=430000000 checksum=00ff
bench=x86_64-linux rounds=6 ns=110000000 checksum=0a0b
bench=riscv64-linux rounds=6 ns=700000000 checksum=0a0b
bench_failed=aarch64-linux 126 sh: 1: /nix/store/x/bin/probe-bench: Exec format error
rvbuild_probe_done=1
garbage line
=
";
        let o = parse(out);
        assert!(o.ran);
        assert_eq!(o.nix_version_line.as_deref(), Some("nix-store (Nix) 2.8.0"));
        assert_eq!(o.system.as_deref(), Some("x86_64-linux"));
        assert_eq!(o.extra_platforms, vec!["i686-linux", "x86_64-v1-linux"]);
        assert_eq!(o.system_features, Some(vec!["benchmark".into(), "big-parallel".into(), "kvm".into()]));
        assert_eq!(o.cores, Some(2));
        assert_eq!(o.load1, Some(0.11));
        assert_eq!(o.free_disk_kib, Some(29_867_900));
        assert_eq!(o.binfmt.len(), 2);
        assert_eq!(
            o.userlands,
            vec![(
                "riscv64".to_string(),
                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".to_string()
            )],
            "malformed userland lines are skipped"
        );
        let id = format!(
            "riscv64-linux-gnu-gcc (Debian 12.2.0-14) 12.2.0\n{H}\n{H}",
            H = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        );
        assert_eq!(
            o.cross_compilers,
            vec![("riscv64-linux-gnu-gcc".to_string(), id)],
            "the version line, then the driver's and cc1's sha256; malformed lines are skipped"
        );
        assert_eq!(o.binfmt[0].name, "qemu-riscv64");
        assert!(o.binfmt[0].enabled && o.binfmt[0].interpreter_present);
        assert_eq!(o.binfmt[0].interpreter, "/usr/libexec/qemu-binfmt/riscv64-binfmt-P");
        assert!(!o.binfmt[1].enabled);
        assert_eq!(o.benches.len(), 4);
        assert_eq!(o.benches[2].outcome, BenchOutcome::Ran { rounds: 6, ns: 700_000_000, checksum: "0a0b".into() });
        match &o.benches[3].outcome {
            BenchOutcome::Failed { status, output } => {
                assert_eq!(*status, 126);
                assert!(output.ends_with("Exec format error"), "{output}");
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    /// The real script under the system sh (dash on Debian) where `nix show-config` fails:
    /// the settings come from `$NIX_CONF_DIR/nix.conf`, everything else is still there.
    #[test]
    fn script_falls_back_to_nix_conf() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).expect("mkdir");
        let fake_nix = bin.join("nix");
        std::fs::write(&fake_nix, "#!/bin/sh\necho \"error: unrecognised flag\" >&2\nexit 1\n").expect("write");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake_nix, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::write(
            dir.path().join("nix.conf"),
            "sandbox = false\n  system = riscv64-linux\nextra-platforms = x86_64-linux  i686-linux\n",
        )
        .expect("write");
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(command(None))
            .env("PATH", path)
            .env("NIX_CONF_DIR", dir.path())
            .output()
            .expect("run sh");
        let o = parse(&String::from_utf8_lossy(&out.stdout));
        assert!(o.ran, "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(o.config_source.as_deref(), Some(dir.path().join("nix.conf").to_string_lossy().as_ref()));
        assert_eq!(o.system.as_deref(), Some("riscv64-linux"));
        assert_eq!(o.extra_platforms, vec!["x86_64-linux", "i686-linux"]);
        assert!(o.uname_m.is_some() && o.cores.is_some_and(|c| c > 0));
        assert!(o.benches.is_empty());
    }

    #[test]
    fn malformed_values_are_missing_not_errors() {
        let o = parse(
            "cores=lots\nloadavg=nan 1 1\ndisk_free_kb=\nbench=x86_64-linux rounds=0 ns=5 checksum=1\nbench=x ns=1\nbinfmt=short\nsystem=\n",
        );
        assert!(!o.ran);
        assert_eq!(o.cores, None);
        assert_eq!(o.load1, None);
        assert_eq!(o.free_disk_kib, None);
        assert!(o.benches.is_empty());
        assert!(o.binfmt.is_empty());
        assert_eq!(o.system, None);
        assert_eq!(parse(""), ScriptOutput::default());
    }
}
