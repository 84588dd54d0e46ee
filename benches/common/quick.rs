//! The benchmarks' quick mode (`RVBUILD_BENCH_QUICK=1`, what CI runs after the tests): small
//! sizes and one repetition, the same figures and ratios printed; a bench in quick mode fails
//! only on an error, never on a timing.
#![allow(dead_code)]

/// Whether quick mode is on.
pub fn on() -> bool {
    std::env::var("RVBUILD_BENCH_QUICK").is_ok_and(|v| v == "1")
}

/// The value of the environment variable `name` if set and parseable, else `quick` in quick
/// mode and `full` otherwise.
pub fn size<T: std::str::FromStr>(name: &str, full: T, quick: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(if on() { quick } else { full })
}

/// A line naming the mode and the build profile, printed first by every bench.
pub fn banner(bench: &str) {
    let mode = if on() { "quick mode (RVBUILD_BENCH_QUICK=1): small sizes, timings not judged" } else { "full mode" };
    let profile = if cfg!(debug_assertions) { ", unoptimised build (timings not representative)" } else { "" };
    println!("{bench}: {mode}{profile}");
}
