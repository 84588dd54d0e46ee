//! rvbuild command-line entry: parse arguments, run, print the diagnostic and map the exit code.

use std::process::ExitCode;

use clap::Parser;

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
    match rvbuild::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let code = err.kind().exit_code();
            eprintln!("{:?}", miette::Report::new(err));
            ExitCode::from(code)
        }
    }
}
