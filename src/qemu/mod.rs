//! QEMU boot smoke test: launch a board image, watch the console for the init marker, enforce a hard timeout.
