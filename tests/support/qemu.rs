//! A QEMU riscv64 `virt` machine running Debian's U-Boot with its console on a pty and an
//! optional virtio-blk disk. The machine is stopped when the value is dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rvbuild::flash::uboot::{Console, ConsoleOptions};

pub const OPENSBI: &str = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin";
pub const UBOOT: &str = "/usr/lib/u-boot/qemu-riscv64_smode/u-boot.bin";
pub const UBOOT_ARM64: &str = "/usr/lib/u-boot/qemu_arm64/u-boot.bin";

pub struct Qemu {
    child: Child,
    /// The console's pty, e.g. `/dev/pts/3`.
    pub pty: String,
}

impl Qemu {
    /// Boots U-Boot on riscv64; `disk` becomes virtio block device 0.
    pub fn start(disk: Option<&Path>) -> Qemu {
        Qemu::start_arch("riscv64", disk)
    }

    /// Boots U-Boot on `riscv64` or `aarch64`.
    pub fn start_arch(arch: &str, disk: Option<&Path>) -> Qemu {
        let mut cmd = Command::new(format!("qemu-system-{arch}"));
        cmd.args(["-M", "virt", "-m", "256M", "-smp", "1", "-display", "none"]).args([
            "-monitor",
            "none",
            "-serial",
            "pty",
            "-no-reboot",
            "-nic",
            "none",
        ]);
        if arch == "aarch64" {
            cmd.args(["-cpu", "cortex-a57", "-bios", UBOOT_ARM64]);
        } else {
            cmd.args(["-bios", OPENSBI, "-kernel", UBOOT]);
        }
        if let Some(d) = disk {
            cmd.args([
                "-drive",
                &format!("file={},format=raw,if=none,id=d0", d.display()),
                "-device",
                "virtio-blk-device,drive=d0",
            ]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start qemu-system-riscv64");
        let out = child.stdout.take().expect("qemu stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("redirected to ").nth(1) {
                    let pty = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = tx.send(pty);
                }
            }
        });
        let pty = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(p) => p,
            Err(_) => {
                let _ = child.kill();
                panic!("QEMU did not report its serial pty");
            }
        };
        Qemu { child, pty }
    }

    /// Keeps U-Boot at its prompt: interrupts autoboot (a disk that boots would otherwise
    /// start before rvbuild, still building, opens the console) the way rvbuild attaches, then
    /// lets the pty go.
    #[allow(dead_code)] // benches/flash_image.rs includes this file too and does not use it
    pub fn stop_autoboot(&self) {
        let mut port = rvbuild::flash::port::open(&self.pty, 115_200).expect("open the console pty");
        let opts = ConsoleOptions { attach_timeout: Duration::from_secs(60), ..ConsoleOptions::default() };
        if let Err(e) = Console::attach(&mut port, opts) {
            panic!("no U-Boot prompt on {}: {e}", self.pty);
        }
    }

    /// Stops QEMU gracefully (SIGTERM) so the disk image is complete, then waits for it.
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill").arg(self.child.id().to_string()).stderr(Stdio::null()).status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        self.stop();
    }
}
