//! `extlinux/extlinux.conf` as U-Boot's `sysboot` reads it: the files each label boots
//! (`kernel`/`linux`, `initrd` with comma-separated parts, `fdt`/`devicetree`), with the line
//! they are named on, resolved against the root of the filesystem that holds the file.

/// Where the boot loaders look for the file.
pub(crate) fn is_extlinux_conf(path: &str) -> bool {
    matches!(path, "/extlinux/extlinux.conf" | "/boot/extlinux/extlinux.conf")
}

/// What a named file must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Kernel,
    Initrd,
    Fdt,
}

impl Role {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Kernel => "kernel",
            Role::Initrd => "initrd",
            Role::Fdt => "fdt",
        }
    }
}

/// One file the configuration names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Named {
    pub line: usize,
    pub role: Role,
    /// Absolute path inside the filesystem.
    pub path: String,
}

/// The files named by every label of `text`, in order.
pub(crate) fn named_files(text: &str) -> Vec<Named> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        let Some((key, value)) = line.split_once(char::is_whitespace) else { continue };
        let role = match key.to_ascii_lowercase().as_str() {
            "kernel" | "linux" => Role::Kernel,
            "initrd" => Role::Initrd,
            "fdt" | "devicetree" => Role::Fdt,
            _ => continue,
        };
        for part in value.trim().split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let path = if part.starts_with('/') { part.to_string() } else { format!("/{part}") };
            out.push(Named { line: i + 1, role, path });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_parts() {
        let conf = "default rv\nlabel rv\n  kernel /Image.gz\n  initrd a.cpio.gz,/b.cpio\n  fdt /dtbs/x.dtb\n  append console=ttyS0\n";
        let n = named_files(conf);
        let got: Vec<(usize, Role, &str)> = n.iter().map(|n| (n.line, n.role, n.path.as_str())).collect();
        assert_eq!(
            got,
            [
                (3, Role::Kernel, "/Image.gz"),
                (4, Role::Initrd, "/a.cpio.gz"),
                (4, Role::Initrd, "/b.cpio"),
                (5, Role::Fdt, "/dtbs/x.dtb")
            ]
        );
        assert!(is_extlinux_conf("/extlinux/extlinux.conf"));
    }
}
