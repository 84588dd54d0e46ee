//! ELF / ABI / image checks of build outputs. Lands with the verify issue.
