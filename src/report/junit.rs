//! `--junit FILE`: collects one test case per derivation, verify check, flash step and boot test,
//! and writes a JUnit XML file when the run ends (CI systems show it as a test report).

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

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
    pub fn xml(&self) -> Result<String> {
        let report = match self.state.lock() {
            Ok(s) => report(&s),
            Err(poisoned) => report(&poisoned.into_inner()),
        };
        report.to_string().map_err(|e| Error::msg(ErrorKind::Internal, format!("cannot render the JUnit report: {e}")))
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
            // Progress and status: no test case of their own.
            Event::Stage { .. }
            | Event::Plan { .. }
            | Event::Builder { .. }
            | Event::Started { .. }
            | Event::Copy { .. }
            | Event::Forecast { .. }
            | Event::Output { .. }
            | Event::TransferStarted { .. }
            | Event::TransferProgress { .. }
            | Event::TransferFinished { .. }
            | Event::Note { .. } => {}
        }
    }

    fn finish(&self) -> Result<()> {
        let xml = self.xml()?;
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

/// One test suite named after the command, one test case per collected case.
fn report(s: &State) -> Report {
    let mut suite = TestSuite::new(text(&s.suite));
    suite.set_time(duration(s.seconds));
    suite.add_test_cases(s.cases.iter().map(test_case));
    let mut report = Report::new("rvbuild");
    report.set_time(duration(s.seconds));
    report.add_test_suite(suite);
    report
}

fn test_case(c: &Case) -> TestCase {
    let status = match &c.outcome {
        Outcome::Passed => TestCaseStatus::success(),
        Outcome::Failed { message, body } => {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            st.set_message(text(message)).set_description(text(body));
            st
        }
        Outcome::Skipped(why) => {
            let mut st = TestCaseStatus::skipped();
            st.set_message(text(why));
            st
        }
    };
    let mut case = TestCase::new(text(&c.name), status);
    case.set_classname(c.classname).set_time(duration(c.seconds));
    case
}

/// quick-junit drops control characters and ANSI escapes; the two noncharacters XML 1.0 also
/// forbids become U+FFFD here.
fn text(s: &str) -> String {
    s.replace(['\u{fffe}', '\u{ffff}'], "\u{fffd}")
}

fn duration(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(c: &str, ok: bool) -> Event {
        Event::Finished { component: c.into(), drv: "d".into(), host: "local".into(), seconds: 1.5, ok, cached: false }
    }

    /// The first start tag `<TAG …>` of an element, without `<TAG` and `>`.
    fn start_tag<'a>(xml: &'a str, tag: &str) -> &'a str {
        let after = xml.split_once(&format!("<{tag} ")).map(|(_, a)| a).unwrap_or_else(|| panic!("no <{tag} in {xml}"));
        after.split('>').next().unwrap_or_default()
    }

    /// The value of attribute `name` in a start tag (attribute order is the serializer's).
    fn attr<'a>(tag: &'a str, name: &str) -> &'a str {
        let key = format!("{name}=\"");
        let start = tag.find(&format!(" {key}")).map(|i| i + 1).or_else(|| tag.starts_with(&key).then_some(0));
        let start = start.unwrap_or_else(|| panic!("no {name} in {tag}")) + key.len();
        tag[start..].split('"').next().unwrap_or_default()
    }

    /// The `<testcase>` named `name`: its start tag and what follows up to its end.
    fn case<'a>(xml: &'a str, name: &str) -> (&'a str, &'a str) {
        let part = xml
            .split("<testcase ")
            .skip(1)
            .find(|p| attr(p.split('>').next().unwrap_or_default(), "name") == name)
            .unwrap_or_else(|| panic!("no test case {name} in {xml}"));
        let (head, rest) = part.split_once('>').unwrap_or((part, ""));
        (head, if head.ends_with('/') { "" } else { rest.split("</testcase>").next().unwrap_or_default() })
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
        let x = j.xml().expect("xml");
        for tag in ["testsuites", "testsuite"] {
            let t = start_tag(&x, tag);
            let counts = ["tests", "failures", "errors", "skipped"].map(|a| attr(t, a));
            assert_eq!(counts, ["3", "1", "0", "1"], "{x}");
        }
        assert!(x.contains("error: `x` &lt;undeclared&gt;</failure>"), "{x}");
        let (head, body) = case(&x, "image");
        assert_eq!(attr(head, "time"), "0.000", "{x}");
        assert!(body.trim_start().starts_with("<skipped"), "{x}");
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
        let x = j.xml().expect("xml");
        assert_eq!(attr(case(&x, "qemu").0, "classname"), "rvbuild", "{x}");
        assert!(x.contains("<failure message=\"boards/x.yaml:1:1: bad\">"), "{x}");
        assert!(x.contains("bad\nmore</failure>"), "the whole error is the failure's text: {x}");
    }

    #[test]
    fn report_text_has_no_escape_sequences_or_characters_xml_forbids() {
        let j = Junit::new(PathBuf::from("unused.xml"));
        j.event(&Event::Queued { component: "kernel".into(), drv: "d".into() });
        j.event(&Event::Log { source: "kernel".into(), line: "\u{1b}[31merror\u{1b}[0m\u{7} \u{ffff}".into() });
        j.event(&finished("kernel", false));
        let x = j.xml().expect("xml");
        assert!(x.contains(">error \u{fffd}</failure>"), "{x}");
        assert!(!x.contains(['\u{1b}', '\u{7}', '\u{ffff}']), "{x}");
    }
}
