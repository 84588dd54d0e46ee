//! `--junit FILE`: collects one test case per derivation, verify check, flash step and boot test,
//! and writes a JUnit XML file when the run ends (CI systems show it as a test report).

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;

use super::{Event, Reporter};
use crate::{Error, ErrorKind, Result};

/// Log lines kept per component for a failure's message.
const TAIL: usize = 30;

#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Passed,
    Failed { message: String, body: String },
    Skipped(String),
}

#[derive(Debug, Clone)]
struct Case {
    classname: &'static str,
    name: String,
    seconds: f64,
    outcome: Outcome,
}

#[derive(Default)]
struct State {
    /// Components queued and not finished yet, in queue order.
    waiting: Vec<String>,
    tails: BTreeMap<String, VecDeque<String>>,
    cases: Vec<Case>,
    suite: String,
    seconds: f64,
}

/// Collects test cases; `finish` writes the file.
pub struct Junit {
    path: PathBuf,
    state: Mutex<State>,
}

impl Junit {
    pub fn new(path: PathBuf) -> Self {
        Junit { path, state: Mutex::new(State { suite: "rvbuild".into(), ..State::default() }) }
    }

    /// The XML document for the events seen so far.
    pub fn xml(&self) -> String {
        match self.state.lock() {
            Ok(s) => render(&s),
            Err(poisoned) => render(&poisoned.into_inner()),
        }
    }
}

fn fail(message: impl Into<String>, body: impl Into<String>) -> Outcome {
    Outcome::Failed { message: message.into(), body: body.into() }
}

impl Reporter for Junit {
    fn event(&self, e: &Event) {
        let Ok(mut s) = self.state.lock() else { return };
        match e {
            Event::Queued { component, .. } => s.waiting.push(component.clone()),
            Event::Log { source, line } => {
                let tail = s.tails.entry(source.clone()).or_default();
                if tail.len() == TAIL {
                    tail.pop_front();
                }
                tail.push_back(line.clone());
            }
            Event::Finished { component, host, seconds, ok, cached, .. } => {
                s.waiting.retain(|c| c != component);
                let outcome = if *ok {
                    Outcome::Passed
                } else {
                    let tail = s.tails.get(component).map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"));
                    fail(format!("{component} failed to build on {host}"), tail.unwrap_or_default())
                };
                let seconds = if *cached { 0.0 } else { *seconds };
                s.cases.push(Case { classname: "build", name: component.clone(), seconds, outcome });
            }
            Event::Verify { target, ok, detail, .. } => {
                let outcome = if *ok { Outcome::Passed } else { fail(format!("verify of {target} failed"), detail) };
                s.cases.push(Case { classname: "verify", name: target.clone(), seconds: 0.0, outcome });
            }
            Event::Flash { board, step, ok, seconds, detail, .. } => {
                let outcome = if *ok { Outcome::Passed } else { fail(format!("flash of {board} failed"), detail) };
                s.cases.push(Case { classname: "flash", name: format!("{board} {step}"), seconds: *seconds, outcome });
            }
            Event::Boot { board, ok, seconds, detail } => {
                let outcome = if *ok {
                    Outcome::Passed
                } else {
                    let tail = s.tails.get("console").map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"));
                    fail(detail.clone(), tail.unwrap_or_default())
                };
                s.cases.push(Case { classname: "boot", name: board.clone(), seconds: *seconds, outcome });
            }
            Event::Summary { command, ok, seconds, error, .. } => {
                s.suite = format!("rvbuild {command}");
                s.seconds = *seconds;
                for c in std::mem::take(&mut s.waiting) {
                    s.cases.push(Case {
                        classname: "build",
                        name: c,
                        seconds: 0.0,
                        outcome: Outcome::Skipped("not built: the run stopped first".into()),
                    });
                }
                // A failure no test case shows (bad board file, missing tool) still fails the report.
                let shown = s.cases.iter().any(|c| matches!(c.outcome, Outcome::Failed { .. }));
                if !ok && !shown {
                    let msg = error.clone().unwrap_or_else(|| "failed".into());
                    let first = msg.lines().next().unwrap_or_default().to_string();
                    s.cases.push(Case {
                        classname: "rvbuild",
                        name: command.clone(),
                        seconds: 0.0,
                        outcome: fail(first, msg),
                    });
                }
            }
            _ => {}
        }
    }

    fn finish(&self) -> Result<()> {
        let xml = self.xml();
        std::fs::write(&self.path, xml).map_err(|e| {
            Error::with_help(
                ErrorKind::Config,
                format!("cannot write the JUnit report {}: {e}", self.path.display()),
                "give --junit a path in a writable directory",
            )
        })
    }
}

/// Escapes text for XML attribute values and element content. Characters XML 1.0 forbids
/// (control characters other than tab, newline, carriage return) become U+FFFD.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(ch),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn render(s: &State) -> String {
    let failures = s.cases.iter().filter(|c| matches!(c.outcome, Outcome::Failed { .. })).count();
    let skipped = s.cases.iter().filter(|c| matches!(c.outcome, Outcome::Skipped(_))).count();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let head = format!(
        "tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{:.3}\"",
        s.cases.len(),
        s.seconds
    );
    let _ = writeln!(x, "<testsuites name=\"rvbuild\" {head}>");
    let _ = writeln!(x, "  <testsuite name=\"{}\" {head}>", escape(&s.suite));
    for c in &s.cases {
        let open = format!(
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            escape(c.classname),
            escape(&c.name),
            c.seconds
        );
        match &c.outcome {
            Outcome::Passed => {
                let _ = writeln!(x, "{open}/>");
            }
            Outcome::Failed { message, body } => {
                let _ = writeln!(x, "{open}>");
                let _ = writeln!(x, "      <failure message=\"{}\">{}</failure>", escape(message), escape(body));
                let _ = writeln!(x, "    </testcase>");
            }
            Outcome::Skipped(why) => {
                let _ = writeln!(x, "{open}>");
                let _ = writeln!(x, "      <skipped message=\"{}\"/>", escape(why));
                let _ = writeln!(x, "    </testcase>");
            }
        }
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(c: &str, ok: bool) -> Event {
        Event::Finished { component: c.into(), drv: "d".into(), host: "local".into(), seconds: 1.5, ok, cached: false }
    }

    #[test]
    fn escapes_markup_quotes_and_control_characters() {
        assert_eq!(escape("a<b>&\"c'\u{1b}[0m\n"), "a&lt;b&gt;&amp;&quot;c&apos;\u{fffd}[0m\n");
    }

    #[test]
    fn failed_component_carries_its_log_tail_and_unstarted_ones_are_skipped() {
        let j = Junit::new(PathBuf::from("unused.xml"));
        for c in ["kernel", "module-x", "image"] {
            j.event(&Event::Queued { component: c.into(), drv: "d".into() });
        }
        j.event(&finished("kernel", true));
        j.event(&Event::Log { source: "module-x".into(), line: "error: `x` <undeclared>".into() });
        j.event(&finished("module-x", false));
        j.event(&Event::Summary {
            schema: 1,
            command: "board".into(),
            ok: false,
            exit_code: 3,
            seconds: 2.0,
            derivations: 3,
            built: 1,
            cached: 0,
            failed: 1,
            error: Some("component `module-x` failed".into()),
        });
        let x = j.xml();
        assert!(x.contains("tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\""), "{x}");
        assert!(x.contains("error: `x` &lt;undeclared&gt;</failure>"), "{x}");
        assert!(x.contains("name=\"image\" time=\"0.000\">\n      <skipped"), "{x}");
        assert_eq!(x.matches("<testcase ").count(), 3);
    }

    #[test]
    fn a_failure_without_a_case_gets_one() {
        let j = Junit::new(PathBuf::from("unused.xml"));
        j.event(&Event::Summary {
            schema: 1,
            command: "qemu".into(),
            ok: false,
            exit_code: 2,
            seconds: 0.1,
            derivations: 0,
            built: 0,
            cached: 0,
            failed: 0,
            error: Some("boards/x.yaml:1:1: bad\nmore".into()),
        });
        let x = j.xml();
        assert!(x.contains("classname=\"rvbuild\" name=\"qemu\""), "{x}");
        assert!(x.contains("<failure message=\"boards/x.yaml:1:1: bad\">"), "{x}");
    }
}
