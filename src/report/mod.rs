//! Events emitted by the core (plan, derivations, logs, outputs, verify, flash, boot, summary)
//! and the renderers that print them: plain lines, a TTY progress display, JSON lines and a
//! JUnit file. Core code never prints: it calls a `Reporter`. The JSON form of every event is
//! documented in docs/events.md.

pub mod gantt;
mod json;
mod junit;
mod live;
pub use junit::escape as xml_escape;
mod plain;
mod session;
mod tty;

pub use json::Json;
pub use junit::Junit;
pub use plain::Plain;
pub use session::{Options, Session};
pub use tty::Tty;

pub use crate::vocab::event::{Event, Reporter, SCHEMA, Silent};

#[cfg(test)]
mod tests {
    use super::Event;

    /// One event of every kind; the match makes a new variant fail to compile here until a
    /// sample (and so a documentation check) is added.
    fn samples() -> Vec<Event> {
        let s = || "x".to_string();
        let all = vec![
            Event::Stage { name: s(), detail: s() },
            Event::Plan { derivations: 1, slots: 1 },
            Event::Queued { component: s(), drv: s() },
            Event::Builder { host: s(), slots: 1, local: true },
            Event::Started { component: s(), drv: s(), host: s(), strategy: s(), estimate: Some(1.0) },
            Event::Copy { component: s(), host: s(), direction: s(), bytes: 1, total: 1, seconds: 1.0, done: true },
            Event::Forecast { remaining: 1.0, elapsed: 1.0, finished: 0, total: 1 },
            Event::Finished { component: s(), drv: s(), host: s(), seconds: 1.0, ok: true, cached: false },
            Event::Log { source: s(), line: s() },
            Event::Output { component: s(), path: s() },
            Event::Verify { target: s(), ok: true, checked: 1, mismatched: 0, skipped: 0, detail: s() },
            Event::TransferStarted { label: s(), total: 1 },
            Event::TransferProgress { label: s(), done: 1, total: 1 },
            Event::TransferFinished { label: s(), bytes: 1, retransmits: 0, seconds: 1.0 },
            Event::Note { text: s() },
            Event::Flash { board: s(), step: s(), ok: true, bytes: 1, seconds: 1.0, detail: s() },
            Event::Boot { board: s(), ok: true, seconds: 1.0, detail: s() },
            Event::Summary {
                schema: super::SCHEMA,
                command: s(),
                ok: true,
                exit_code: 0,
                seconds: 1.0,
                derivations: 0,
                built: 0,
                cached: 0,
                failed: 0,
                error: None,
            },
        ];
        for e in &all {
            match e {
                Event::Stage { .. }
                | Event::Plan { .. }
                | Event::Queued { .. }
                | Event::Builder { .. }
                | Event::Started { .. }
                | Event::Copy { .. }
                | Event::Forecast { .. }
                | Event::Finished { .. }
                | Event::Log { .. }
                | Event::Output { .. }
                | Event::Verify { .. }
                | Event::TransferStarted { .. }
                | Event::TransferProgress { .. }
                | Event::TransferFinished { .. }
                | Event::Note { .. }
                | Event::Flash { .. }
                | Event::Boot { .. }
                | Event::Summary { .. } => {}
            }
        }
        all
    }

    #[test]
    fn every_event_kind_and_field_is_documented() {
        let doc = include_str!("../../docs/events.md");
        for e in samples() {
            let v = serde_json::to_value(&e).unwrap_or_default();
            let kind = v["event"].as_str().unwrap_or_default().to_string();
            let head = format!("### `{kind}`\n");
            let start = doc.find(&head).unwrap_or_else(|| panic!("docs/events.md has no section `{kind}`"));
            let rest = &doc[start + head.len()..];
            let section = &rest[..rest.find("\n#").unwrap_or(rest.len())];
            for key in v.as_object().into_iter().flat_map(|o| o.keys()).filter(|k| *k != "event") {
                assert!(section.contains(&format!("| `{key}` |")), "`{kind}`.`{key}` is not in docs/events.md");
            }
        }
    }
}
