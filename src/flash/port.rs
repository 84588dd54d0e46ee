//! Serial ports: opening one for flashing (8N1, no flow control, exclusive) with errors that say
//! what to do, and listing the machine's ports with their USB identity from sysfs (serialport is
//! built without libudev, so the enumeration reads /sys/class/tty itself).

use std::path::Path;
use std::time::Duration;

use serialport::{DataBits, FlowControl, Parity, StopBits, TTYPort};

use super::error::FlashError;
use crate::{Error, Result};

/// The USB identity of a port's adapter.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UsbInfo {
    pub vid: u16,
    pub pid: u16,
    pub manufacturer: Option<String>,
    pub product: Option<String>,
    pub serial: Option<String>,
}

/// One serial port of this machine.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PortInfo {
    /// Device path, e.g. `/dev/ttyUSB0`.
    pub path: String,
    /// Kernel driver of the port, when sysfs names it.
    pub driver: Option<String>,
    pub usb: Option<UsbInfo>,
}

/// Lists the serial ports found under the sysfs root `sys` (normally `/sys`).
pub fn list_in(sys: &Path) -> Vec<PortInfo> {
    let Ok(entries) = std::fs::read_dir(sys.join("class/tty")) else {
        return Vec::new();
    };
    let mut ports: Vec<PortInfo> = entries.flatten().filter_map(|e| port_info(&e.path())).collect();
    ports.sort_by(|a, b| a.path.cmp(&b.path));
    ports
}

/// Lists this machine's serial ports.
pub fn list() -> Vec<PortInfo> {
    list_in(Path::new("/sys"))
}

fn read_attr(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(name)).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn port_info(class_entry: &Path) -> Option<PortInfo> {
    let name = class_entry.file_name()?.to_str()?.to_string();
    // Virtual terminals and ptys have no `device`; real ports do.
    let device = std::fs::canonicalize(class_entry.join("device")).ok()?;
    let driver = std::fs::read_link(device.join("driver"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_string()));
    // Legacy 8250 ports that the kernel registers without hardware report type 0.
    if driver.as_deref() == Some("serial8250") && read_attr(class_entry, "type").as_deref() == Some("0") {
        return None;
    }
    let usb = device.ancestors().take(6).find(|d| d.join("idVendor").is_file()).and_then(usb_info);
    Some(PortInfo { path: format!("/dev/{name}"), driver, usb })
}

fn usb_info(dir: &Path) -> Option<UsbInfo> {
    let hex = |n: &str| read_attr(dir, n).and_then(|s| u16::from_str_radix(&s, 16).ok());
    Some(UsbInfo {
        vid: hex("idVendor")?,
        pid: hex("idProduct")?,
        manufacturer: read_attr(dir, "manufacturer"),
        product: read_attr(dir, "product"),
        serial: read_attr(dir, "serial"),
    })
}

/// Turns a `--port` value into a device path: `auto` picks the single USB serial adapter.
pub fn resolve(spec: Option<&str>, ports: &[PortInfo]) -> Result<String> {
    let spec = spec.unwrap_or("").trim();
    if spec.is_empty() {
        return Err(FlashError::NoPort.into());
    }
    if spec != "auto" {
        return Ok(spec.to_string());
    }
    let usb: Vec<&PortInfo> = ports.iter().filter(|p| p.usb.is_some()).collect();
    match usb.as_slice() {
        [one] => Ok(one.path.clone()),
        [] => Err(FlashError::NoAdapter.into()),
        many => Err(FlashError::ManyAdapters { ports: many.iter().map(|p| p.path.clone()).collect() }.into()),
    }
}

/// Opens `path` at `baud`, 8N1, without flow control, for this process only.
pub fn open(path: &str, baud: u32) -> Result<TTYPort> {
    if !Path::new(path).exists() {
        return Err(FlashError::NoSuchPort { path: path.to_string() }.into());
    }
    serialport::new(path, baud)
        .data_bits(DataBits::Eight)
        .parity(Parity::None)
        .stop_bits(StopBits::One)
        .flow_control(FlowControl::None)
        .timeout(Duration::from_millis(100))
        .exclusive(true)
        .open_native()
        .map_err(|e| open_error(path, e))
}

fn open_error(path: &str, e: serialport::Error) -> Error {
    use serialport::ErrorKind as K;
    match e.kind() {
        K::NoDevice => FlashError::PortBusy { path: path.to_string(), source: e }.into(),
        K::Io(std::io::ErrorKind::PermissionDenied) => {
            FlashError::PortPermission { path: path.to_string(), source: e }.into()
        }
        K::Io(std::io::ErrorKind::NotFound) => FlashError::NoSuchPort { path: path.to_string() }.into(),
        _ => FlashError::OpenPort { path: path.to_string(), source: e }.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn usb_port(path: &str) -> PortInfo {
        PortInfo {
            path: path.into(),
            driver: None,
            usb: Some(UsbInfo { vid: 0x0403, pid: 0x6001, manufacturer: None, product: None, serial: None }),
        }
    }

    #[test]
    fn auto_picks_the_single_usb_adapter_and_refuses_several() {
        let plain = PortInfo { path: "/dev/ttyS0".into(), driver: None, usb: None };
        let one = vec![plain.clone(), usb_port("/dev/ttyUSB0")];
        assert_eq!(resolve(Some("auto"), &one).unwrap(), "/dev/ttyUSB0");
        let two = vec![usb_port("/dev/ttyUSB0"), usb_port("/dev/ttyACM0")];
        let err = resolve(Some("auto"), &two).unwrap_err().to_string();
        assert!(err.contains("2 USB serial adapters"), "{err}");
        assert!(resolve(Some("auto"), &[plain]).is_err());
        assert!(resolve(None, &one).is_err());
        assert_eq!(resolve(Some("/dev/x"), &[]).unwrap(), "/dev/x");
    }

    #[test]
    fn open_errors_say_what_to_do() {
        let denied = serialport::Error::new(
            serialport::ErrorKind::Io(std::io::ErrorKind::PermissionDenied),
            "Permission denied",
        );
        let e = open_error("/dev/ttyUSB0", denied);
        assert_eq!(e.kind(), ErrorKind::Prerequisite);
        let help = miette::Diagnostic::help(&e).map(|h| h.to_string()).unwrap_or_default();
        assert!(help.contains("dialout"), "{help}");
        let busy = serialport::Error::new(serialport::ErrorKind::NoDevice, "locked");
        assert!(open_error("/dev/ttyUSB0", busy).to_string().contains("busy"));
    }

    #[test]
    fn sysfs_tree_yields_usb_identity() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let usbdev = root.join("devices/usb1/1-1");
        let iface = usbdev.join("1-1:1.0/ttyUSB0");
        std::fs::create_dir_all(&iface).unwrap();
        for (k, v) in [
            ("idVendor", "10c4\n"),
            ("idProduct", "ea60\n"),
            ("manufacturer", "Silicon Labs\n"),
            ("product", "CP2102\n"),
            ("serial", "0001\n"),
        ] {
            std::fs::write(usbdev.join(k), v).unwrap();
        }
        let class = root.join("class/tty");
        std::fs::create_dir_all(class.join("ttyUSB0")).unwrap();
        std::os::unix::fs::symlink(&iface, class.join("ttyUSB0/device")).unwrap();
        // A virtual terminal: no device link, not listed.
        std::fs::create_dir_all(class.join("tty1")).unwrap();
        let ports = list_in(root);
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].path, "/dev/ttyUSB0");
        let usb = ports[0].usb.as_ref().unwrap();
        assert_eq!((usb.vid, usb.pid), (0x10c4, 0xea60));
        assert_eq!(usb.manufacturer.as_deref(), Some("Silicon Labs"));
        assert_eq!(usb.serial.as_deref(), Some("0001"));
    }
}
