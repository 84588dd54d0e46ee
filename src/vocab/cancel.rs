//! Ctrl-C / SIGTERM: a global "interrupted" flag and a registry of running child processes
//! (nix-store, qemu). On the first signal the binary calls [`on_signal`]: every registered child
//! gets SIGTERM, the flag is set, and the waiting code fails; the run then ends with exit code
//! 130. The signal listener, its grace period and the exit itself live in `main`.

use std::collections::BTreeSet;
use std::process::Child;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use miette::Diagnostic;

use crate::{Error, ErrorKind};

/// The error a run ends with when Ctrl-C or SIGTERM stopped it (see [`classify`]).
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("interrupted: stopped by Ctrl-C / SIGTERM; running builds and QEMU were terminated")]
#[diagnostic(
    code(rvbuild::interrupted),
    help("run the command again; finished components are reused from the Nix store")
)]
pub struct Interrupted;

impl From<Interrupted> for Error {
    fn from(e: Interrupted) -> Error {
        Error::new(ErrorKind::Interrupted, e)
    }
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static CHILDREN: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

/// True once SIGINT or SIGTERM arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// A registered child process; dropping it unregisters it.
pub struct Registered(u32);

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut c) = CHILDREN.lock() {
            c.remove(&self.0);
        }
    }
}

/// Registers a child to be terminated on Ctrl-C / SIGTERM while the guard lives. A child
/// started after the signal is terminated at once.
pub fn register(child: &Child) -> Registered {
    register_pid(child.id())
}

/// [`register`] by process id (for tokio's children).
pub fn register_pid(pid: u32) -> Registered {
    if let Ok(mut c) = CHILDREN.lock() {
        c.insert(pid);
    }
    if interrupted() {
        terminate(pid);
    }
    Registered(pid)
}

/// How many registered children are still running.
pub fn running_children() -> usize {
    CHILDREN.lock().map(|c| c.len()).unwrap_or(0)
}

fn terminate(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return };
    // SAFETY: kill(2) touches no memory of ours. The pid is a child of ours that stays
    // registered until just after it is reaped, so it names that child.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

/// What the binary calls when SIGINT or SIGTERM arrives: sets the flag and terminates the
/// registered children; returns how many there were. Listening for the signals, the grace
/// period, the message and the exit code are the binary's (`main`).
pub fn on_signal() -> usize {
    INTERRUPTED.store(true, Ordering::SeqCst);
    let pids: Vec<u32> = CHILDREN.lock().map(|c| c.iter().copied().collect()).unwrap_or_default();
    for &pid in &pids {
        terminate(pid);
    }
    pids.len()
}

/// Replaces an error caused by the interruption (a killed child failing) with `Interrupted`.
pub fn classify(e: Error) -> Error {
    if interrupted() && e.kind() != ErrorKind::Interrupted { Interrupted.into() } else { e }
}
