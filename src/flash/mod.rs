//! Serial flashing: XMODEM/YMODEM, the U-Boot console driver with CRC read-back, the JH7110
//! boot-ROM recovery path, serial port handling and progress reporting.

pub mod boot;
pub mod chunks;
pub mod crc;
pub mod error;
pub mod link;
pub mod port;
pub mod progress;
pub mod raw;
pub mod recovery;
pub mod resume;
pub mod steps;
pub mod xmodem;
pub mod ymodem;

pub use link::SerialLink;
pub mod plan;
pub mod uboot;
pub mod whole;

pub use plan::{FlashOptions, FlashReport, FlashStep, StepReport, Target, flash};
