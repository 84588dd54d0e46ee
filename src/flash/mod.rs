//! Serial flashing: XMODEM/YMODEM, U-Boot console driver, SoC recovery. Lands with the flash issue.
