//! rvbuild command-line entry: parse arguments, start the one async runtime and the Ctrl-C /
//! SIGTERM listener, run, print the diagnostic and map the exit code.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use rvbuild::vocab::cancel;
use tokio::signal::unix::{Signal, SignalKind, signal};

fn main() -> ExitCode {
    // Long diagnostics stay on one line so `file:line:col` can be grepped and clicked.
    let _ = miette::set_hook(Box::new(|_| Box::new(miette::MietteHandlerOpts::new().wrap_lines(false).build())));
    let cli = match rvbuild::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rvbuild: cannot start the async runtime: {e}");
            return ExitCode::from(rvbuild::ErrorKind::Internal.exit_code());
        }
    };
    listen_for_signals(&rt);
    // Commands run on this thread and block on the runtime where they need async code.
    match rvbuild::cli::run(cli, rt.handle()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let code = err.kind().exit_code();
            eprintln!("{:?}", miette::Report::new(err));
            ExitCode::from(code)
        }
    }
}

/// Listens for SIGINT and SIGTERM. The handlers are registered before this returns, so a
/// signal that comes right after is already caught.
///
/// The first signal terminates the registered children and sets the flag: with children to
/// stop, the main thread sees them fail and exits 130 after its summary. Code with nothing
/// registered (a serial transfer) does not look at the flag, so it gets a short grace period
/// only. A second signal, or the end of the grace period (10 s with children, 2 s without),
/// exits at once.
fn listen_for_signals(rt: &tokio::runtime::Runtime) {
    let streams = {
        let _guard = rt.enter();
        (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    };
    let (Ok(int), Ok(term)) = streams else { return };
    rt.spawn(interrupt(int, term));
}

async fn interrupt(mut int: Signal, mut term: Signal) {
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    let grace = if cancel::on_signal() > 0 { Duration::from_secs(10) } else { Duration::from_secs(2) };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
        _ = tokio::time::sleep(grace) => {}
    }
    cancel::on_signal();
    eprintln!("rvbuild: interrupted");
    std::process::exit(i32::from(rvbuild::ErrorKind::Interrupted.exit_code()));
}
