//! The real boards, built offline with the host provider: the JH7110 boards' GPT SD image laid
//! out as the boot ROM and SPL expect (read back and compared byte for byte), their shared
//! kernel, the SPI-NOR flash plan, the QEMU smoke boot of the board kernel; the Raspberry Pi 4's
//! FAT boot partition with the GPU firmware; and bad input that must fail before any build.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use support::{built, manifest, run, text};

const SPL_TYPE: &str = "2E54B353-1271-4842-806F-E436D6AF6985";
const FIT_TYPE: &str = "5B193300-FC78-4CD8-8528-8D5AB16A52F0";

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// A GPT type GUID in its on-disk mixed-endian form, as text.
fn guid(b: &[u8]) -> String {
    format!(
        "{:08X}-{:04X}-{:04X}-{}-{}",
        le32(b, 0),
        u16::from_le_bytes([b[4], b[5]]),
        u16::from_le_bytes([b[6], b[7]]),
        b[8..10].iter().map(|x| format!("{x:02X}")).collect::<String>(),
        b[10..16].iter().map(|x| format!("{x:02X}")).collect::<String>()
    )
}

struct GptEntry {
    type_guid: String,
    first: u64,
    last: u64,
    name: String,
}

fn read_gpt(disk: &[u8]) -> Vec<GptEntry> {
    let hdr = &disk[512..1024];
    assert_eq!(&hdr[0..8], b"EFI PART", "no GPT header at LBA 1");
    let entries_lba = u64::from_le_bytes(hdr[72..80].try_into().expect("8 bytes")) as usize;
    let count = le32(hdr, 80) as usize;
    let size = le32(hdr, 84) as usize;
    let mut out = Vec::new();
    for i in 0..count {
        let e = &disk[entries_lba * 512 + i * size..entries_lba * 512 + (i + 1) * size];
        if e[0..16].iter().all(|&b| b == 0) {
            continue;
        }
        let name: Vec<u16> =
            e[56..128].chunks(2).map(|c| u16::from_le_bytes([c[0], c[1]])).take_while(|&c| c != 0).collect();
        out.push(GptEntry {
            type_guid: guid(&e[0..16]),
            first: u64::from_le_bytes(e[32..40].try_into().expect("8 bytes")),
            last: u64::from_le_bytes(e[40..48].try_into().expect("8 bytes")),
            name: String::from_utf16_lossy(&name),
        });
    }
    out
}

fn mtools(cmd: &str, image_at: &str, path: &str) -> String {
    let o = Command::new(cmd).args(["-i", image_at, path]).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(o.status.success(), "{cmd} -i {image_at} {path}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn artifact(m: &serde_json::Value, name: &str) -> String {
    m["artifacts"][name].as_str().unwrap_or_else(|| panic!("artifact {name} missing")).to_string()
}

#[test]
fn qemu_visionfive2_sd_image_flash_plan_and_smoke_boot() {
    let out = built("visionfive2");
    let m = manifest(&out);
    let disk = fs::read(artifact(&m, "disk.img")).expect("disk.img");
    let spl = fs::read(artifact(&m, "u-boot-spl.bin.normal.out")).expect("spl");
    let fit = fs::read(artifact(&m, "u-boot.itb")).expect("fit");

    // GPT: SPL at sector 4096, FIT at 8192, with the types the boot ROM and SPL look for.
    let parts = read_gpt(&disk);
    let by_name = |n: &str| parts.iter().find(|p| p.name == n).unwrap_or_else(|| panic!("partition {n} missing"));
    let (p_spl, p_fit) = (by_name("spl"), by_name("uboot"));
    assert_eq!((p_spl.first, p_spl.type_guid.as_str()), (4096, SPL_TYPE));
    assert_eq!((p_fit.first, p_fit.type_guid.as_str()), (8192, FIT_TYPE));
    assert!(p_spl.last < p_fit.first);
    assert_eq!(by_name("boot").first, 16384);
    assert!(by_name("root").first > by_name("boot").last);
    for (p, content) in [(p_spl, &spl), (p_fit, &fit)] {
        let start = p.first as usize * 512;
        assert_eq!(&disk[start..start + content.len()], &content[..], "{} bytes differ from the file", p.name);
    }

    // The StarFive SPL header the boot ROM checks.
    assert_eq!(le32(&spl, 0), 0x240);
    assert_eq!(le32(&spl, 0x284), 0x0101_0101);
    assert_eq!(le32(&spl, 0x28C), 0x400);
    let payload = le32(&spl, 0x288) as usize;
    assert_eq!(spl.len(), 0x400 + payload, "payload size field");
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&spl[0x400..]);
    assert_eq!(le32(&spl, 0x290), crc, "payload CRC32");

    // The FAT boot partition at 8 MiB.
    let image = artifact(&m, "disk.img");
    let at = format!("{image}@@{}", 16384 * 512);
    let listing = mtools("mdir", &at, "-/b").to_lowercase();
    for f in ["::/image.gz", "::/initramfs.cpio.gz", "::/extlinux/extlinux.conf", "::/dtbs/starfive/"] {
        assert!(listing.contains(f), "{f} not in the boot partition:\n{listing}");
    }
    let conf = mtools("mtype", &at, "::/extlinux/extlinux.conf");
    assert!(conf.contains("kernel /Image.gz"), "{conf}");
    assert!(conf.contains("fdt /dtbs/starfive/jh7110-starfive-visionfive-2-v1.3b.dtb"), "{conf}");
    assert!(conf.contains("console=ttyS0,115200"), "{conf}");
    let dtb = mtools("mdir", &at, "::/dtbs/starfive");
    assert!(dtb.contains("jh7110-starfive-visionfive-2-v1"), "{dtb}");

    // The SPI-NOR flash plan the flash stage writes.
    let regions = m["flash"]["regions"].as_array().expect("flash regions");
    assert_eq!(m["flash"]["method"], "uboot-spi-nor");
    assert_eq!(
        (regions[0]["offset"].as_u64(), regions[0]["file"].as_str()),
        (Some(0), Some("u-boot-spl.bin.normal.out"))
    );
    assert_eq!((regions[1]["offset"].as_u64(), regions[1]["file"].as_str()), (Some(0x100000), Some("u-boot.itb")));
    assert!(regions.iter().all(|r| r["path"].is_string()));

    // The board's own kernel, drivers and userland, booted on QEMU virt.
    let o = run(&["qemu", "visionfive2", "--no-build", "--out", out.to_str().unwrap_or_default()], &out);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("not the board's firmware path"), "{t}");
    let log = fs::read_to_string(out.join("logs/boot.log")).expect("boot log");
    assert!(log.contains("rvhello: loaded"), "{log}");
    assert!(log.contains("i2c-designware-platform.ko") || log.contains("i2c_designware"), "in-tree modules: {log}");
    assert!(log.lines().any(|l| l.trim() == "RVBUILD-BOOT-OK"), "{log}");
}

#[test]
fn qemu_jh7110_boards_share_one_kernel() {
    let vf2 = manifest(&built("visionfive2"));
    for (board, dtb) in
        [("star64", "starfive/jh7110-pine64-star64.dtb"), ("milkv-mars", "starfive/jh7110-milkv-mars.dtb")]
    {
        let m = manifest(&built(board));
        assert_eq!(
            m["components"]["kernel"]["outputs"], vf2["components"]["kernel"]["outputs"],
            "{board} built its own kernel"
        );
        assert_eq!(m["components"]["kernel"]["cached"], true, "{board}: the kernel was rebuilt");
        assert!(m["artifacts"].get(format!("dtbs/{dtb}")).is_some(), "{board}: {dtb} not in boot files");
        let conf = fs::read_to_string(artifact(&m, "extlinux/extlinux.conf")).expect("extlinux");
        assert!(conf.contains(&format!("fdt /dtbs/{dtb}")), "{board}: {conf}");
    }
}

#[test]
fn nixbuild_rpi4_boot_partition_has_the_gpu_firmware() {
    let out = built("rpi4");
    let m = manifest(&out);
    let image = artifact(&m, "disk.img");
    let disk = fs::read(&image).expect("disk");
    assert_eq!(&disk[510..512], &[0x55, 0xAA], "MBR signature");
    let p1 = &disk[446..462];
    assert_eq!(p1[0], 0x80, "partition 1 bootable");
    assert_eq!(p1[4], 0x0c, "partition 1 type FAT32 LBA");
    assert_eq!(le32(p1, 8), 2048, "partition 1 starts at 1 MiB");
    let at = format!("{image}@@{}", 2048 * 512);
    let listing = mtools("mdir", &at, "-/b").to_lowercase();
    for f in [
        "::/start4.elf",
        "::/fixup4.dat",
        "::/u-boot.bin",
        "::/config.txt",
        "::/bcm2711-rpi-4-b.dtb",
        "::/image",
        "::/extlinux/extlinux.conf",
    ] {
        assert!(listing.contains(f), "{f} not in the Pi boot partition:\n{listing}");
    }
    let cfg = mtools("mtype", &at, "::/config.txt");
    assert!(cfg.contains("arm_64bit=1") && cfg.contains("kernel=u-boot.bin"), "{cfg}");
    let start4 = fs::read(artifact(&m, "start4.elf")).expect("start4.elf");
    assert_eq!(&start4[0..4], b"\x7fELF", "start4.elf is the real VideoCore firmware");
    assert!(Path::new(&artifact(&m, "dtbs/broadcom/bcm2711-rpi-4-b.dtb")).is_file());
}

#[test]
fn device_tree_missing_from_the_kernel_fails_before_building() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join("boards")).expect("mkdir");
    let b = support::board_text("visionfive2")
        .replace("name: visionfive2", "name: vf2typo")
        .replace("jh7110-starfive-visionfive-2-v1.3b.dtb", "jh7110-starfive-visionfive-3.dtb");
    fs::write(dir.path().join("boards/vf2typo.yaml"), b).expect("write");
    let start = std::time::Instant::now();
    let o = run(&["board", "vf2typo", "--out", "out"], dir.path());
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("device tree `starfive/jh7110-starfive-visionfive-3.dtb` does not exist"), "{t}");
    assert!(t.contains("jh7110-starfive-visionfive-2-v1.3b.dts"), "similar names are suggested: {t}");
    assert!(start.elapsed().as_secs() < 60);
    assert!(!dir.path().join("out/manifest.json").exists());
}
