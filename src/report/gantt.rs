//! Gantt charts of a schedule (`--gantt FILE.svg` / `.html`): one lane per builder slot, one
//! bar per derivation coloured by strategy (cross / native / emulated), the critical path
//! outlined, and for a finished build the measured runs as thin bars under the predicted ones.
//! A helper of a split compile (`--split`) shows a hatched bar in each of its lanes while it
//! helps (its slots are held for that derivation).

use std::fmt::Write;

use crate::schedule::simulate::{Hold, Schedule, ScheduledTask};

const LABEL_W: f64 = 170.0;
const PLOT_W: f64 = 1000.0;
const LANE_H: f64 = 20.0;
const BAR_H: f64 = 12.0;
const ACTUAL_H: f64 = 5.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 30.0;

/// Fill colour per strategy.
fn colour(strategy: &str) -> &'static str {
    match strategy {
        "cross" => "#4e79a7",
        "native" => "#59a14f",
        "emulated" => "#f28e2b",
        _ => "#9c9c9c",
    }
}

/// The chart for a file: a self-contained HTML page for `.html`/`.htm`, else an SVG.
pub fn render_for(path: &std::path::Path, pred: &Schedule, actual: Option<&Schedule>) -> String {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") | Some("htm") => render_html(pred, actual),
        _ => render_svg(pred, actual),
    }
}

/// Draws the predicted and the measured schedule into `path` (SVG, or HTML for `.html`) and
/// returns the line that says so.
pub fn write_schedules(path: &std::path::Path, s: &crate::build::Schedules) -> crate::Result<String> {
    let text = render_for(path, &s.predicted, Some(&s.measured));
    std::fs::write(path, text).map_err(|e| crate::Error::io(crate::ErrorKind::Config, path.display(), e))?;
    Ok(format!(
        "schedule drawn in {}: predicted {:.1} s, measured {:.1} s",
        path.display(),
        s.predicted_makespan,
        s.measured.makespan
    ))
}

/// Escapes text for SVG/HTML content and attribute values (the same rules as XML reports).
pub fn escape(s: &str) -> String {
    crate::report::xml_escape(s)
}

/// A readable tick step (1, 2 or 5 times a power of ten) giving about eight ticks.
fn tick_step(span: f64) -> f64 {
    if !(span.is_finite() && span > 0.0) {
        return 1.0;
    }
    let raw = span / 8.0;
    let pow = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * pow).find(|s| *s >= raw).unwrap_or(10.0 * pow)
}

/// Lanes: (builder, slot) pairs over both schedules, in builder order.
fn lanes(pred: &Schedule, actual: Option<&Schedule>) -> Vec<(usize, u32, String)> {
    let n = pred.builders.len().max(actual.map(|a| a.builders.len()).unwrap_or(0));
    let mut out = Vec::new();
    for b in 0..n {
        let count =
            pred.lanes.get(b).copied().unwrap_or(0).max(actual.and_then(|a| a.lanes.get(b).copied()).unwrap_or(0));
        let name = pred.builders.get(b).or(actual.and_then(|a| a.builders.get(b))).cloned().unwrap_or_default();
        for s in 0..count {
            out.push((b, s, name.clone()));
        }
    }
    out
}

/// The schedule as a standalone SVG document. With `actual`, the measured runs are drawn as
/// thin bars in the lanes they really ran in.
pub fn render_svg(pred: &Schedule, actual: Option<&Schedule>) -> String {
    let lanes = lanes(pred, actual);
    let span = pred.makespan.max(actual.map(|a| a.makespan).unwrap_or(0.0)).max(1e-9);
    let x = |t: f64| LABEL_W + (t.max(0.0) / span) * PLOT_W;
    let height = TOP + LANE_H * lanes.len() as f64 + BOTTOM;
    let width = LABEL_W + PLOT_W + 20.0;
    let lane_y = |b: usize, s: u32| lanes.iter().position(|l| l.0 == b && l.1 == s).map(|i| TOP + LANE_H * i as f64);
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let title = match actual {
        Some(a) => format!("predicted {:.0} s, actual {:.0} s", pred.makespan, a.makespan),
        None => format!("predicted makespan {:.0} s", pred.makespan),
    };
    let _ = writeln!(o, r#"<text x="4" y="16" font-size="13">{}</text>"#, escape(&title));
    let _ = writeln!(
        o,
        r##"<defs><pattern id="held" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#dbe5f0"/><line x1="0" y1="0" x2="0" y2="6" stroke="#4e79a7" stroke-width="2"/></pattern></defs>"##
    );
    // Legend.
    let mut lx = LABEL_W + 300.0;
    for (label, fill, extra) in [
        ("cross", colour("cross"), ""),
        ("native", colour("native"), ""),
        ("emulated", colour("emulated"), ""),
        ("critical path", "#ffffff", r##" stroke="#d62728" stroke-width="2""##),
        ("helps a split", "url(#held)", r##" stroke="#4e79a7" stroke-width="0.5""##),
    ] {
        let _ = writeln!(o, r#"<rect x="{lx:.0}" y="6" width="12" height="12" fill="{fill}"{extra}/>"#);
        let _ = writeln!(o, r#"<text x="{:.0}" y="16">{label}</text>"#, lx + 16.0);
        lx += 110.0;
    }
    // Lanes and axis.
    for (i, (_, slot, name)) in lanes.iter().enumerate() {
        let y = TOP + LANE_H * i as f64;
        let shade = if i % 2 == 0 { "#f4f4f4" } else { "#ffffff" };
        let _ = writeln!(o, r#"<rect x="{LABEL_W}" y="{y:.1}" width="{PLOT_W}" height="{LANE_H}" fill="{shade}"/>"#);
        let _ = writeln!(o, r#"<text x="4" y="{:.1}">{} #{slot}</text>"#, y + 14.0, escape(name));
    }
    let axis_y = TOP + LANE_H * lanes.len() as f64;
    let step = tick_step(span);
    let mut t = 0.0;
    while t <= span + 1e-9 {
        let _ = writeln!(
            o,
            r##"<line x1="{0:.1}" y1="{TOP}" x2="{0:.1}" y2="{axis_y:.1}" stroke="#dddddd"/><text x="{0:.1}" y="{1:.1}" text-anchor="middle">{2}s</text>"##,
            x(t),
            axis_y + 14.0,
            t
        );
        t += step;
    }
    let bar = |o: &mut String, e: &ScheduledTask, class: &str, dy: f64, h: f64| {
        let Some(y) = lane_y(e.builder, e.slot) else { return };
        let w = (x(e.finish) - x(e.start)).max(0.5);
        let stroke = if e.critical {
            r##" stroke="#d62728" stroke-width="2""##
        } else {
            r##" stroke="#ffffff" stroke-width="0.5""##
        };
        let crit = if e.critical { " critical" } else { "" };
        let _ = writeln!(
            o,
            r#"<rect class="{class} {strategy}{crit}" x="{:.2}" y="{:.1}" width="{w:.2}" height="{h}" fill="{}"{stroke}><title>{} ({strategy}) {:.1}–{:.1} s</title></rect>"#,
            x(e.start),
            y + dy,
            colour(e.strategy.as_str()),
            escape(&e.name),
            e.start,
            e.finish,
            strategy = e.strategy,
        );
    };
    // Held helpers first, under the bars: every lane of the helper while the split runs.
    let held = |o: &mut String, s: &Schedule, h: &Hold, class: &str, dy: f64, height: f64| {
        let owner = s.builders.get(h.owner).map(String::as_str).unwrap_or("?");
        let w = (x(h.finish) - x(h.start)).max(0.5);
        for y in lanes.iter().filter(|l| l.0 == h.builder).filter_map(|l| lane_y(l.0, l.1)) {
            let _ = writeln!(
                o,
                r##"<rect class="{class}" x="{:.2}" y="{:.1}" width="{w:.2}" height="{height}" fill="url(#held)" stroke="#4e79a7" stroke-width="0.5"><title>helps {} on {} (split compile) {:.1}–{:.1} s</title></rect>"##,
                x(h.start),
                y + dy,
                escape(&h.name),
                escape(owner),
                h.start,
                h.finish
            );
        }
    };
    for h in &pred.holds {
        held(&mut o, pred, h, "held", 2.0, BAR_H);
    }
    if let Some(a) = actual {
        for h in &a.holds {
            held(&mut o, a, h, "held actual", 2.0 + BAR_H + 0.5, ACTUAL_H);
        }
    }
    for e in &pred.entries {
        bar(&mut o, e, "bar", 2.0, BAR_H);
    }
    if let Some(a) = actual {
        for e in &a.entries {
            bar(&mut o, e, "actual", 2.0 + BAR_H + 0.5, ACTUAL_H);
        }
    }
    o.push_str("</svg>\n");
    o
}

/// A self-contained HTML page: the SVG inline and a table of every derivation.
pub fn render_html(pred: &Schedule, actual: Option<&Schedule>) -> String {
    let mut o = String::new();
    o.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>rvbuild schedule</title>\n",
    );
    o.push_str(
        "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;font-size:12px}\
         td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}td.n{text-align:right}tr.critical td{font-weight:bold}</style>\n",
    );
    o.push_str("</head>\n<body>\n<h1>rvbuild schedule</h1>\n");
    o.push_str(&render_svg(pred, actual));
    o.push_str("<table>\n<tr><th>derivation</th><th>builder</th><th>slot</th><th>strategy</th><th>start s</th><th>finish s</th>");
    if actual.is_some() {
        o.push_str("<th>actual builder</th><th>actual start s</th><th>actual finish s</th>");
    }
    o.push_str("<th>critical</th></tr>\n");
    for e in &pred.entries {
        let class = if e.critical { " class=\"critical\"" } else { "" };
        let builder = pred.builders.get(e.builder).map(String::as_str).unwrap_or("?");
        let _ = write!(
            o,
            "<tr{class}><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{:.1}</td><td class=\"n\">{:.1}</td>",
            escape(&e.name),
            escape(builder),
            e.slot,
            e.strategy,
            e.start,
            e.finish
        );
        if let Some(a) = actual {
            match a.entries.iter().find(|x| x.task == e.task) {
                Some(x) => {
                    let ab = a.builders.get(x.builder).map(String::as_str).unwrap_or("?");
                    let _ = write!(
                        o,
                        "<td>{}</td><td class=\"n\">{:.1}</td><td class=\"n\">{:.1}</td>",
                        escape(ab),
                        x.start,
                        x.finish
                    );
                }
                None => o.push_str("<td></td><td></td><td></td>"),
            }
        }
        let _ = writeln!(o, "<td>{}</td></tr>", if e.critical { "yes" } else { "" });
    }
    o.push_str("</table>\n</body>\n</html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::online::tests::{builder, task};
    use crate::schedule::simulate::{Run, SimPolicy, simulate};

    fn count(hay: &str, needle: &str) -> usize {
        hay.matches(needle).count()
    }

    #[test]
    fn bars_lanes_and_critical_marks() {
        let mut tasks = vec![task("toolchain", 100.0, &[]), task("linux <6.12> & co", 400.0, &[0])];
        tasks.extend((0..4).map(|i| task(&format!("pkg{i}"), 20.0, &[0])));
        let pool = vec![builder("local", 2, 1.0, true), builder("x1", 2, 2.0, false)];
        let sim = simulate(&tasks, &pool, SimPolicy::Rvbuild).unwrap_or_else(|e| panic!("{e}"));
        let svg = render_svg(&sim.schedule, None);
        assert!(svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(count(&svg, "<rect class=\"bar "), 6);
        let critical = sim.schedule.entries.iter().filter(|e| e.critical).count();
        assert_eq!(critical, 2);
        assert_eq!(count(&svg, " critical\""), critical);
        assert_eq!(count(&svg, "<rect class=\"actual "), 0);
        // Names are escaped; the raw name never appears.
        assert!(svg.contains("linux &lt;6.12&gt; &amp; co"));
        assert!(!svg.contains("linux <6.12>"));
        // One lane label per slot.
        assert_eq!(count(&svg, "local #"), 2);
        assert_eq!(count(&svg, "x1 #"), 2);
    }

    #[test]
    fn actual_runs_drawn_beside_prediction_and_in_the_table() {
        let tasks = vec![task("a", 10.0, &[]), task("b", 10.0, &[0])];
        let pool = vec![builder("local", 1, 1.0, true)];
        let sim = simulate(&tasks, &pool, SimPolicy::Rvbuild).unwrap_or_else(|e| panic!("{e}"));
        let runs = [
            Run { task: 0, builder: 0, start: 0.0, finish: 14.0 },
            Run { task: 1, builder: 0, start: 14.0, finish: 30.0 },
        ];
        let actual = crate::schedule::Schedule::from_runs(&tasks, &pool, &runs);
        let svg = render_svg(&sim.schedule, Some(&actual));
        assert_eq!(count(&svg, "<rect class=\"bar "), 2);
        assert_eq!(count(&svg, "<rect class=\"actual "), 2);
        assert!(svg.contains("predicted 20 s, actual 30 s"));
        let html = render_html(&sim.schedule, Some(&actual));
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<svg "));
        assert_eq!(count(&html, "<tr class=\"critical\">"), 2);
        assert!(html.contains("<td class=\"n\">30.0</td>"));
    }

    #[test]
    fn a_split_kernel_hatches_every_lane_of_its_helpers() {
        let mut kernel = task("kernel", 100.0, &[]);
        kernel.helpers = vec!["a".into(), "b".into()];
        let tasks = vec![kernel, task("small", 5.0, &[])];
        let pool = vec![builder("own", 2, 1.0, true), builder("a", 2, 1.0, false), builder("b", 1, 1.0, false)];
        let sim = simulate(&tasks, &pool, SimPolicy::Rvbuild).unwrap_or_else(|e| panic!("{e}"));
        let svg = render_svg(&sim.schedule, None);
        // a's two lanes and b's one, none of the owner's.
        assert_eq!(count(&svg, "<rect class=\"held\""), 3);
        assert_eq!(count(&svg, "helps kernel on own (split compile)"), 3);
        let runs = [
            Run { task: 0, builder: 0, start: 0.0, finish: 80.0 },
            Run { task: 1, builder: 0, start: 0.0, finish: 4.0 },
        ];
        let actual = crate::schedule::Schedule::from_runs(&tasks, &pool, &runs);
        let both = render_svg(&sim.schedule, Some(&actual));
        assert_eq!(count(&both, "<rect class=\"held actual\""), 3);
    }

    #[test]
    fn empty_schedule_renders() {
        let s = crate::schedule::Schedule::from_runs(&[], &[], &[]);
        let svg = render_svg(&s, None);
        assert!(svg.contains("</svg>"));
        assert_eq!(count(&svg, "<rect class=\"bar "), 0);
        assert!(render_html(&s, None).contains("</table>"));
    }

    #[test]
    fn tick_steps_are_round() {
        assert_eq!(tick_step(800.0), 100.0);
        assert_eq!(tick_step(75.0), 10.0);
        assert_eq!(tick_step(0.0), 1.0);
    }
}
