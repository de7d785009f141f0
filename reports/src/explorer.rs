//! The incident explorer: `explorer/index.html` in the run directory, a static site that opens
//! from disk (`file://`, no server, no network). The index is a filterable table of every online
//! run; each run has its own page (`explorer/incidents/<id>.html`) with its timeline as an inline
//! SVG (fault window, harm windows, action ticks), every action with its harm verdict, the
//! incidents with the kernel's verdicts and rule ids, every journal record, and the one-line
//! command that replays it. Pages are rendered here, so the data of a page is the page itself
//! (nothing is loaded from elsewhere), and nothing in them depends on the wall clock.

use crate::run_dir::{OutputError, RunDir};
use experiments::eval::RunDetail;
use experiments::online::Actor;
use kernel::journal::Event;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;

/// The explorer's stylesheet.
const STYLE: &str = include_str!("explorer/style.css");
/// The index page's filtering and sorting.
const SCRIPT: &str = include_str!("explorer/explorer.js");

/// Escapes text for HTML (element content and quoted attributes).
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The name a value has in JSON (`naive-microreboot`, `errors`).
fn serde_name(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The page name of a run: app, fault, policy, seed and (for sensitivity runs) the LLM error
/// factor. Unique within an evaluation.
pub fn incident_id(d: &RunDetail) -> String {
    let r = &d.record;
    let mut id = format!(
        "{}-{}-{}-s{}",
        r.app,
        r.fault,
        serde_name(&r.policy),
        r.seed
    );
    if r.error_factor != 1.0 {
        let _ = write!(id, "-x{}", r.error_factor);
    }
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Kernel rejections, aborted plans and raw commands the orchestrator refused.
fn agent_failures(d: &RunDetail) -> u32 {
    d.record.rejections + d.record.plans_aborted + d.record.refused_commands
}

fn ttr_text(d: &RunDetail) -> String {
    d.record
        .ttr_s
        .map_or_else(|| "not recovered".into(), |t| format!("{t:.0} s"))
}

/// The command that replays a run with `microreboot scenario`; `extra` is appended (e.g. a
/// `--config` when the evaluation did not use the defaults).
pub fn replay_command(d: &RunDetail, extra: &str) -> String {
    let r = &d.record;
    let mut cmd = format!(
        "microreboot scenario --app {} --fault {} --policy {} --seed {}",
        r.app,
        r.fault,
        serde_name(&r.policy),
        r.seed
    );
    cmd.push_str(extra);
    cmd
}

fn page_head(title: &str, css: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<link rel=\"stylesheet\" href=\"{css}\">\n</head>\n<body>\n",
        esc(title)
    )
}

/// Writes `explorer/index.html`, its stylesheet and script, and one page per run. `replay_extra`
/// is appended to every replay command. Returns the files.
pub fn write(
    out: &mut RunDir,
    details: &[RunDetail],
    replay_extra: &str,
) -> Result<Vec<PathBuf>, OutputError> {
    let mut files = vec![
        out.write("explorer/style.css", STYLE.as_bytes())?,
        out.write("explorer/explorer.js", SCRIPT.as_bytes())?,
    ];
    let mut seen = BTreeSet::new();
    let mut ids = Vec::with_capacity(details.len());
    for d in details {
        let mut id = incident_id(d);
        let base = id.clone();
        let mut n = 2;
        while !seen.insert(id.clone()) {
            id = format!("{base}-{n}");
            n += 1;
        }
        ids.push(id);
    }
    files.push(out.write("explorer/index.html", index(details, &ids).as_bytes())?);
    for (d, id) in details.iter().zip(&ids) {
        let page = incident_page(d, &replay_command(d, replay_extra));
        files.push(out.write(&format!("explorer/incidents/{id}.html"), page.as_bytes())?);
    }
    Ok(files)
}

fn options(id: &str, label: &str, values: &BTreeSet<String>) -> String {
    let mut s = format!(
        "<label>{label} <select id=\"{id}\"><option value=\"\">all</option>",
        label = esc(label)
    );
    for v in values {
        let _ = write!(s, "<option>{}</option>", esc(v));
    }
    s.push_str("</select></label>\n");
    s
}

fn index(details: &[RunDetail], ids: &[String]) -> String {
    let set = |f: fn(&RunDetail) -> String| details.iter().map(f).collect::<BTreeSet<_>>();
    let mut s = page_head("microreboot: incident explorer", "style.css");
    let harmful = details.iter().filter(|d| d.record.harmful).count();
    let _ = write!(
        s,
        "<header><h1>Incident explorer</h1><p>{} online runs of this evaluation, {harmful} with a \
         harmful agent action. Each row opens the run's page: its timeline, actions, kernel \
         verdicts, journal, harm windows and the command that replays it. \
         <em>Agent failures</em> = kernel rejections + aborted plans + refused raw commands.</p>\
         </header>\n<form id=\"filters\" onsubmit=\"return false\">\n",
        details.len()
    );
    s.push_str(&options("f-app", "app", &set(|d| d.record.app.clone())));
    s.push_str(&options(
        "f-fault",
        "fault",
        &set(|d| d.record.fault.to_string()),
    ));
    s.push_str(&options(
        "f-policy",
        "policy",
        &set(|d| serde_name(&d.record.policy)),
    ));
    s.push_str(&options(
        "f-factor",
        "LLM error factor",
        &set(|d| d.record.error_factor.to_string()),
    ));
    s.push_str(
        "<label>harm <select id=\"f-harmful\"><option value=\"\">all</option>\
         <option value=\"yes\">harmful</option><option value=\"no\">harmless</option>\
         </select></label>\n\
         <label>escalated <select id=\"f-escalated\"><option value=\"\">all</option>\
         <option value=\"yes\">yes</option><option value=\"no\">no</option></select></label>\n\
         <label>text <input id=\"f-text\" type=\"search\" placeholder=\"target, seed…\"></label>\n\
         <button id=\"f-reset\" type=\"button\">reset</button>\n\
         <span id=\"count\"></span>\n</form>\n",
    );
    s.push_str(
        "<table id=\"incidents\">\n<thead><tr>\
         <th data-sort=\"text\">app</th><th data-sort=\"text\">fault</th>\
         <th data-sort=\"text\">target</th><th data-sort=\"text\">policy</th>\
         <th data-sort=\"num\">seed</th><th data-sort=\"num\">LLM error factor</th>\
         <th data-sort=\"text\">harmful</th><th data-sort=\"num\">TTR</th>\
         <th data-sort=\"num\">escalated</th><th data-sort=\"num\">agent failures</th>\
         </tr></thead>\n<tbody>\n",
    );
    for (d, id) in details.iter().zip(ids) {
        let r = &d.record;
        let policy = serde_name(&r.policy);
        let yes = |b: bool| if b { "yes" } else { "no" };
        let _ = writeln!(
            s,
            "<tr data-id=\"{id}\" data-app=\"{app}\" data-fault=\"{fault}\" data-policy=\"{policy}\" \
             data-seed=\"{seed}\" data-factor=\"{factor}\" data-harmful=\"{harm}\" \
             data-escalated=\"{esc_}\"{cls}>\
             <td><a href=\"incidents/{id}.html\">{app}</a></td><td>{fault}</td><td>{target}</td>\
             <td>{policy}</td><td>{seed}</td><td>{factor}</td><td>{harm}</td>\
             <td data-v=\"{ttr_v}\">{ttr}</td><td data-v=\"{escs}\">{escs}</td><td>{fails}</td></tr>",
            id = esc(id),
            app = esc(&r.app),
            fault = esc(r.fault.as_str()),
            policy = esc(&policy),
            seed = r.seed,
            factor = r.error_factor,
            harm = yes(r.harmful),
            esc_ = yes(r.escalations > 0),
            cls = if r.harmful { " class=\"harmful\"" } else { "" },
            target = esc(&d.target),
            ttr_v = r
                .ttr_s
                .map_or_else(|| "Infinity".to_string(), |t| t.to_string()),
            ttr = ttr_text(d),
            escs = r.escalations,
            fails = agent_failures(d),
        );
    }
    s.push_str("</tbody>\n</table>\n<script src=\"explorer.js\"></script>\n</body>\n</html>\n");
    s
}

fn incident_page(d: &RunDetail, replay: &str) -> String {
    let r = &d.record;
    let policy = serde_name(&r.policy);
    let title = format!(
        "{} / {} of {} / {} / seed {}",
        r.app, r.fault, d.target, policy, r.seed
    );
    let mut s = page_head(&format!("microreboot: {title}"), "../style.css");
    let _ = write!(
        s,
        "<nav><a href=\"../index.html\">&larr; all incidents</a></nav>\n<header><h1>{}</h1>",
        esc(&title)
    );
    if r.error_factor != 1.0 {
        let _ = write!(
            s,
            "<p class=\"note\">Sensitivity run: the simulated LLM's error rates are scaled by \
             {}. <code>scenario</code> replays factor 1 (the command below reproduces the main \
             matrix's run of this seed).</p>",
            r.error_factor
        );
    }
    s.push_str("</header>\n");
    let _ = writeln!(
        s,
        "<section id=\"replay\"><h2>Replay</h2><pre><code>{}</code></pre></section>",
        esc(replay)
    );

    // Summary.
    let yes = |b: bool| if b { "yes" } else { "no" };
    let summary: Vec<(&str, String)> = vec![
        ("harmful", yes(r.harmful).into()),
        ("worse than noop", yes(r.counterfactual.is_some()).into()),
        ("time to recovery", ttr_text(d)),
        ("incidents opened", r.incidents.to_string()),
        ("kernel rejections", r.rejections.to_string()),
        ("escalations", r.escalations.to_string()),
        ("plans committed", r.plans_committed.to_string()),
        ("plans aborted", r.plans_aborted.to_string()),
        ("undo / compensation", r.rollbacks.to_string()),
        ("lease expiries", r.lease_expiries.to_string()),
        ("refused raw commands", r.refused_commands.to_string()),
        (
            "root cause named",
            r.correct_root.map_or("n/a".into(), |b| yes(b).into()),
        ),
        (
            "mistakes left in plans",
            if r.mistakes.is_empty() {
                "none".into()
            } else {
                r.mistakes
                    .iter()
                    .map(serde_name)
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
        ("simulator events", r.events.to_string()),
    ];
    s.push_str("<section id=\"summary\"><h2>Summary</h2><dl>");
    for (k, v) in summary {
        let _ = write!(s, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(&v));
    }
    s.push_str("</dl></section>\n");

    let _ = writeln!(
        s,
        "<section id=\"timeline\"><h2>Timeline</h2>{}</section>",
        timeline_svg(d)
    );

    // Harm windows.
    s.push_str("<section id=\"harm\"><h2>Harm windows</h2>");
    let harms: Vec<_> = r
        .actions
        .iter()
        .enumerate()
        .filter_map(|(i, a)| a.harm.as_ref().map(|h| (i, a, h)))
        .collect();
    if harms.is_empty() {
        s.push_str(
            "<p class=\"none\">No harm windows: the oracle found no agent action harmful.</p>",
        );
    } else {
        s.push_str(
            "<table class=\"harm-windows\"><thead><tr><th>action</th><th>at (s)</th><th>kind</th>\
             <th>scope</th><th>metric</th><th>window (s)</th><th>baseline</th><th>worst</th>\
             </tr></thead><tbody>",
        );
        for (i, a, h) in harms {
            let _ = write!(
                s,
                "<tr class=\"harmful\"><td><a href=\"#action-{n}\">#{n}</a> {what}</td><td>{at:.1}</td>\
                 <td>{kind}</td><td>{sk} {scope}</td><td>{metric}</td><td>{from}–{to}</td>\
                 <td>{base:.4}</td><td>{worst:.4}</td></tr>",
                n = i + 1,
                what = esc(&a.what),
                at = a.at_s,
                kind = esc(&a.kind),
                sk = serde_name(&h.scope_kind),
                scope = esc(&h.scope),
                metric = serde_name(&h.metric),
                from = h.start_s,
                to = h.start_s + h.duration_s,
                base = h.baseline,
                worst = h.worst,
            );
        }
        s.push_str("</tbody></table>");
    }
    if let Some(c) = &r.counterfactual {
        let _ = write!(
            s,
            "<p>Worse than doing nothing: {} of {} {} from {} s for {} s (noop baseline {:.4}, \
             worst {:.4}).</p>",
            serde_name(&c.metric),
            serde_name(&c.scope_kind),
            esc(&c.scope),
            c.start_s,
            c.duration_s,
            c.baseline,
            c.worst
        );
    }
    s.push_str("</section>\n");

    // Actions.
    s.push_str("<section id=\"actions\"><h2>Actions</h2>");
    if r.actions.is_empty() {
        s.push_str("<p class=\"none\">No action took effect.</p>");
    } else {
        s.push_str(
            "<table class=\"actions\"><thead><tr><th>#</th><th>at (s)</th><th>actor</th>\
             <th>kind</th><th>what</th><th>targets</th><th>incident</th><th>plan</th>\
             <th>harm verdict</th></tr></thead><tbody>",
        );
        for (i, a) in r.actions.iter().enumerate() {
            let log = d.actions.get(i);
            let opt = |v: Option<u64>| v.map_or(String::new(), |v| v.to_string());
            let verdict = match (&a.harm, a.actor) {
                (_, Actor::Human) => "not judged (human)".to_string(),
                (None, _) => "no harm".to_string(),
                (Some(h), _) => format!(
                    "HARM: {} of {} from {} s for {} s",
                    serde_name(&h.metric),
                    h.scope,
                    h.start_s,
                    h.duration_s
                ),
            };
            let _ = write!(
                s,
                "<tr id=\"action-{n}\"{cls}><td>{n}</td><td>{at:.1}</td><td>{actor}</td>\
                 <td>{kind}</td><td>{what}</td><td>{targets}</td><td>{inc}</td><td>{plan}</td>\
                 <td>{verdict}</td></tr>",
                n = i + 1,
                cls = if a.harm.is_some() {
                    " class=\"harmful\""
                } else {
                    ""
                },
                at = a.at_s,
                actor = serde_name(&a.actor),
                kind = esc(&a.kind),
                what = esc(&a.what),
                targets = esc(&log.map_or(String::new(), |l| l.targets.join(", "))),
                inc = opt(log.and_then(|l| l.incident)),
                plan = opt(log.and_then(|l| l.plan)),
                verdict = esc(&verdict),
            );
        }
        s.push_str("</tbody></table>");
    }
    s.push_str("</section>\n");

    // Incidents and the kernel's verdicts.
    s.push_str("<section id=\"verdicts\"><h2>Incidents and kernel verdicts</h2>");
    if d.incidents.is_empty() {
        s.push_str("<p class=\"none\">No incident was opened.</p>");
    }
    for inc in &d.incidents {
        let _ = write!(
            s,
            "<h3>Incident {}</h3><ul><li>opened at {:.1} s, symptom {}, root cause {} ({}), \
             scope {} services; resolved {}</li>",
            inc.number,
            inc.opened_at_s,
            esc(&inc.symptom),
            esc(&inc.root_cause),
            serde_name(&inc.fault),
            inc.scope_size,
            inc.resolved_at_s
                .map_or("no".into(), |t| format!("at {t:.1} s"))
        );
        if let Some(dg) = &inc.diagnosis {
            let _ = write!(
                s,
                "<li>diagnosis: {} {} (root cause correct: {}, type correct: {}), {} rounds</li>",
                esc(&dg.root_cause),
                serde_name(&dg.fault),
                yes(dg.correct_root),
                yes(dg.correct_type),
                inc.rounds
            );
        }
        let _ = write!(s, "<li>plans accepted: {}</li>", inc.accepted);
        for (i, rules) in inc.rejections.iter().enumerate() {
            let ids: Vec<&str> = rules.iter().map(|r| r.id()).collect();
            let _ = write!(
                s,
                "<li class=\"rejected\">kernel rejection {}: <span class=\"rules\">{}</span></li>",
                i + 1,
                esc(&ids.join(", "))
            );
        }
        for rr in &inc.refused_replies {
            let _ = write!(
                s,
                "<li class=\"rejected\">reply refused at {:.1} s: {}</li>",
                rr.at_s,
                esc(&rr.reason)
            );
        }
        if let Some(t) = inc.escalated_at_s {
            let _ = write!(
                s,
                "<li>escalated at {t:.1} s{}</li>",
                inc.escalation_reason
                    .as_ref()
                    .map_or(String::new(), |r| format!(": {}", esc(r)))
            );
        }
        s.push_str("</ul>");
    }
    s.push_str("</section>\n");

    // Journal.
    s.push_str("<section id=\"journal\"><h2>Kernel journal</h2>");
    if d.journal.is_empty() {
        s.push_str("<p class=\"none\">The journal is empty: no plan reached the kernel.</p>");
    } else {
        s.push_str(
            "<table class=\"journal\"><thead><tr><th>seq</th><th>t (s)</th><th>plan</th>\
             <th>event</th><th>detail</th></tr></thead><tbody>",
        );
        for rec in &d.journal {
            let (name, detail) = journal_detail(&rec.event);
            let _ = write!(
                s,
                "<tr class=\"ev-{name}\"><td>{}</td><td>{:.3}</td><td>{}</td><td>{name}</td>\
                 <td>{detail}</td></tr>",
                rec.seq,
                rec.t_us.0 as f64 / 1e6,
                esc(&serde_json::to_string(&rec.plan).unwrap_or_default()),
            );
        }
        s.push_str("</tbody></table>");
    }
    s.push_str("</section>\n</body>\n</html>\n");
    s
}

/// A journal event's name (its JSON tag) and detail as HTML.
fn journal_detail(e: &Event) -> (String, String) {
    let value = serde_json::to_value(e).unwrap_or_default();
    let name = value
        .get("event")
        .and_then(|v| v.as_str())
        .unwrap_or("event")
        .to_string();
    let detail = match e {
        Event::Verdict {
            accepted,
            violations,
        } => {
            let mut s = if *accepted {
                "<span class=\"accepted\">accepted</span>".to_string()
            } else {
                "<span class=\"rejected\">rejected</span>".to_string()
            };
            if !violations.is_empty() {
                s.push_str("<ul>");
                for v in violations {
                    let mut at = String::new();
                    if let Some(step) = v.step {
                        let _ = write!(at, " step {step}");
                    }
                    if let Some(t) = &v.target {
                        let _ = write!(at, " on {t}");
                    }
                    let _ = write!(
                        s,
                        "<li><span class=\"rules\">{}</span>{}: {}</li>",
                        v.rule.id(),
                        esc(&at),
                        esc(&v.detail)
                    );
                }
                s.push_str("</ul>");
            }
            s
        }
        Event::Proposal { .. } => {
            let mut fields = value.as_object().cloned().unwrap_or_default();
            fields.remove("event");
            let incident = fields.remove("incident").unwrap_or_default();
            let plan = fields.remove("proposed").unwrap_or_default();
            format!(
                "incident {}<details><summary>the plan as proposed</summary><pre>{}</pre></details>",
                esc(&incident.to_string()),
                esc(&serde_json::to_string_pretty(&plan).unwrap_or_default())
            )
        }
        _ => {
            let mut fields = value.as_object().cloned().unwrap_or_default();
            fields.remove("event");
            if fields.is_empty() {
                String::new()
            } else {
                format!(
                    "<code>{}</code>",
                    esc(&serde_json::Value::Object(fields).to_string())
                )
            }
        }
    };
    (name, detail)
}

/// A round tick step for an axis of length `span` (about `n` ticks).
fn tick_step(span: f64, n: f64) -> f64 {
    let raw = (span / n).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 2.5 {
        2.5
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// The run's timeline as an SVG: error rate and worst path P99 per second, the fault window,
/// the harm windows labelled with the action that caused them, and every action as a tick.
pub fn timeline_svg(d: &RunDetail) -> String {
    const W: f64 = 960.0;
    const L: f64 = 64.0;
    const R: f64 = 16.0;
    const TOP: f64 = 28.0;
    const H1: f64 = 170.0; // error rate panel
    const GAP: f64 = 26.0;
    const H2: f64 = 110.0; // p99 panel
    const LANE: f64 = 56.0; // action ticks
    const HARM_ROWS: usize = 6;
    let harm_h = 6.0 + HARM_ROWS as f64 * 13.0; // harm windows
    let total_h = TOP + H1 + GAP + H2 + GAP + LANE + GAP + harm_h + 54.0;
    let seconds = d.timeline.len().max(1) as f64;
    let x = |t: f64| L + (t.clamp(0.0, seconds) / seconds) * (W - L - R);
    let y1 = |v: f64| TOP + H1 - v.clamp(0.0, 1.0) * H1;
    let p99_max = d
        .timeline
        .iter()
        .map(|p| p.p99_ms)
        .fold(0.0f64, f64::max)
        .max(1.0);
    let p_step = tick_step(p99_max, 3.0);
    let p_top = (p99_max / p_step).ceil() * p_step;
    let top2 = TOP + H1 + GAP;
    let y2 = |v: f64| top2 + H2 - (v / p_top).clamp(0.0, 1.0) * H2;
    let lane_top = top2 + H2 + GAP;
    let harm_top = lane_top + LANE + GAP;
    let bottom = harm_top + harm_h;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline\" viewBox=\"0 0 {W} {total_h}\" \
         width=\"{W}\" height=\"{total_h}\" font-family=\"DejaVu Sans, Verdana, sans-serif\" \
         font-size=\"11\" role=\"img\" aria-label=\"timeline\">"
    );
    // Fault window (both panels and the lane).
    let f0 = x(d.fault_start_s);
    let f1 = x(d.fault_start_s + d.fault_duration_s);
    let _ = write!(
        s,
        "<rect class=\"fault-window\" x=\"{f0:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{:.1}\" \
         fill=\"#fbe3b8\" opacity=\"0.6\"><title>fault window: {} of {} from {} s</title></rect>\
         <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#a0620a\">fault: {} of {}</text>",
        (f1 - f0).max(0.0),
        bottom - TOP,
        esc(d.record.fault.as_str()),
        esc(&d.target),
        d.fault_start_s,
        f0 + 3.0,
        TOP - 8.0,
        esc(d.record.fault.as_str()),
        esc(&d.target)
    );
    // Harm windows: their union shaded over both panels, and each window as a bar in the harm
    // lane, labelled with the action that caused it (where the label has room).
    let harms: Vec<(
        usize,
        &experiments::record::ActionBrief,
        &experiments::harm::Regression,
    )> = d
        .record
        .actions
        .iter()
        .enumerate()
        .filter_map(|(i, a)| a.harm.as_ref().map(|h| (i, a, h)))
        .collect();
    let mut union: Vec<(u32, u32)> = harms
        .iter()
        .map(|(_, _, h)| (h.start_s, h.start_s + h.duration_s))
        .collect();
    union.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::new();
    for (a, b) in union {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    for (a, b) in merged {
        let _ = write!(
            s,
            "<rect class=\"harm-shade\" x=\"{:.1}\" y=\"{TOP}\" width=\"{:.1}\" \
             height=\"{:.1}\" fill=\"#d62728\" opacity=\"0.13\"/>",
            x(f64::from(a)),
            (x(f64::from(b)) - x(f64::from(a))).max(1.0),
            H1 + GAP + H2
        );
    }
    let mut label_end = [f64::MIN; HARM_ROWS];
    // Labels go on top of every bar, so a later bar does not hide an earlier label.
    let mut labels = String::new();
    for (k, (i, a, h)) in harms.iter().enumerate() {
        let h0 = x(f64::from(h.start_s));
        let h1 = x(f64::from(h.start_s + h.duration_s));
        let row = k % HARM_ROWS;
        let by = harm_top + 3.0 + row as f64 * 13.0;
        let label = format!("#{} {}", i + 1, a.kind);
        let room = h0 > label_end[row];
        if room {
            label_end[row] = h0 + 8.0 + label.len() as f64 * 6.2;
            let _ = write!(
                labels,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#8a1010\" font-size=\"10\">{}</text>",
                h0 + 3.0,
                by + 9.0,
                esc(&label)
            );
        }
        let _ = write!(
            s,
            "<g class=\"harm-window\"><rect x=\"{h0:.1}\" y=\"{by:.1}\" width=\"{:.1}\" \
             height=\"11\" fill=\"#f4c6c6\" stroke=\"#d62728\" stroke-width=\"0.8\"/>\
             <title>harm window {}–{} s ({} of {}) caused by action #{} ({})</title></g>",
            (h1 - h0).max(1.0),
            h.start_s,
            h.start_s + h.duration_s,
            serde_name(&h.metric),
            esc(&h.scope),
            i + 1,
            esc(&a.what)
        );
    }
    if !labels.is_empty() {
        let _ = write!(s, "<g class=\"harm-labels\">{labels}</g>");
    }
    // Axes and grid.
    let t_step = tick_step(seconds, 10.0).max(1.0);
    let mut t = 0.0;
    while t <= seconds + 1e-9 {
        let xt = x(t);
        let _ = write!(
            s,
            "<line x1=\"{xt:.1}\" y1=\"{TOP}\" x2=\"{xt:.1}\" y2=\"{:.1}\" stroke=\"#e5e5e5\"/>\
             <text x=\"{xt:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{t}</text>",
            bottom,
            bottom + 14.0
        );
        t += t_step;
    }
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">seconds</text>",
        (L + W - R) / 2.0,
        bottom + 30.0
    );
    for i in 0..=4 {
        let v = f64::from(i) * 0.25;
        let yy = y1(v);
        let _ = write!(
            s,
            "<line x1=\"{L}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" stroke=\"#e5e5e5\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}%</text>",
            W - R,
            L - 4.0,
            yy + 4.0,
            i * 25
        );
    }
    let mut v = 0.0;
    while v <= p_top + 1e-9 {
        let yy = y2(v);
        let _ = write!(
            s,
            "<line x1=\"{L}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" stroke=\"#e5e5e5\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{v}</text>",
            W - R,
            L - 4.0,
            yy + 4.0
        );
        v += p_step;
    }
    let _ = write!(
        s,
        "<text x=\"12\" y=\"{:.1}\" transform=\"rotate(-90 12 {:.1})\" text-anchor=\"middle\">\
         error rate</text><text x=\"12\" y=\"{:.1}\" transform=\"rotate(-90 12 {:.1})\" \
         text-anchor=\"middle\">P99 (ms)</text><text x=\"12\" y=\"{:.1}\" \
         transform=\"rotate(-90 12 {:.1})\" text-anchor=\"middle\">actions</text>\
         <text x=\"12\" y=\"{:.1}\" transform=\"rotate(-90 12 {:.1})\" \
         text-anchor=\"middle\">harm</text>",
        TOP + H1 / 2.0,
        TOP + H1 / 2.0,
        top2 + H2 / 2.0,
        top2 + H2 / 2.0,
        lane_top + LANE / 2.0,
        lane_top + LANE / 2.0,
        harm_top + harm_h / 2.0,
        harm_top + harm_h / 2.0,
    );
    for (top, h) in [(TOP, H1), (top2, H2), (lane_top, LANE), (harm_top, harm_h)] {
        let _ = write!(
            s,
            "<rect x=\"{L}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"none\" \
             stroke=\"#888\"/>",
            W - L - R
        );
    }
    // Series (each second's value drawn at its middle).
    let line = |f: &dyn Fn(f64) -> f64, val: fn(&experiments::eval::TimelinePoint) -> f64| {
        let mut pts = String::new();
        for p in &d.timeline {
            let _ = write!(pts, "{:.0},{:.1} ", x(f64::from(p.second) + 0.5), f(val(p)));
        }
        pts.trim_end().to_string()
    };
    let _ = write!(
        s,
        "<polyline class=\"error-rate\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" \
         points=\"{}\"/><polyline class=\"p99\" fill=\"none\" stroke=\"#7f3fbf\" \
         stroke-width=\"1.2\" points=\"{}\"/>",
        line(&y1, |p| p.error_rate),
        line(&y2, |p| p.p99_ms)
    );
    // Actions as ticks, numbered as in the actions table.
    for (i, a) in d.record.actions.iter().enumerate() {
        let xa = x(a.at_s);
        let (color, what) = match (a.actor, a.harm.is_some()) {
            (Actor::Human, _) => ("#555555", "human action"),
            (_, true) => ("#d62728", "harmful agent action"),
            _ => ("#2ca02c", "agent action"),
        };
        let row = (i % 3) as f64;
        let _ = write!(
            s,
            "<g class=\"action-tick\"><line x1=\"{xa:.1}\" y1=\"{TOP}\" x2=\"{xa:.1}\" y2=\"{:.1}\" \
             stroke=\"{color}\" stroke-opacity=\"0.35\" stroke-dasharray=\"2,3\"/><line \
             x1=\"{xa:.1}\" y1=\"{:.1}\" x2=\"{xa:.1}\" y2=\"{:.1}\" stroke=\"{color}\" \
             stroke-width=\"2\"/><text x=\"{xa:.1}\" y=\"{:.1}\" text-anchor=\"middle\" \
             fill=\"{color}\" font-size=\"10\">{}</text><title>#{} at {:.1} s, {what}: {} {}</title></g>",
            lane_top,
            lane_top + 30.0,
            lane_top + LANE,
            lane_top + 11.0 + row * 9.5,
            i + 1,
            i + 1,
            a.at_s,
            esc(&a.kind),
            esc(&a.what)
        );
    }
    // Legend.
    let ly = total_h - 6.0;
    let items = [
        ("line", "#1f77b4", "error rate"),
        ("line", "#7f3fbf", "worst path P99"),
        ("rect", "#fbe3b8", "fault window"),
        ("rect", "#f4c6c6", "harm window"),
        ("tick", "#2ca02c", "agent action"),
        ("tick", "#d62728", "harmful agent action"),
        ("tick", "#555555", "human action"),
    ];
    let mut lx = L;
    for (shape, color, label) in items {
        let mark = match shape {
            "line" => format!(
                "<line x1=\"{lx:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{color}\" \
                 stroke-width=\"2\"/>",
                ly - 4.0,
                lx + 16.0,
                ly - 4.0
            ),
            "rect" => format!(
                "<rect x=\"{lx:.1}\" y=\"{:.1}\" width=\"16\" height=\"10\" fill=\"{color}\" \
                 stroke=\"#999\"/>",
                ly - 9.0
            ),
            _ => format!(
                "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{color}\" \
                 stroke-width=\"2\"/>",
                lx + 8.0,
                ly - 11.0,
                lx + 8.0
            ),
        };
        let _ = write!(
            s,
            "<g class=\"legend\">{mark}<text x=\"{:.1}\" y=\"{ly:.1}\">{label}</text></g>",
            lx + 20.0
        );
        lx += 24.0 + label.len() as f64 * 6.4;
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::{esc, tick_step};

    #[test]
    fn text_is_escaped_for_html_and_ticks_are_round() {
        assert_eq!(
            esc("<a href=\"x\">R1 & 'R2'</a>"),
            "&lt;a href=&quot;x&quot;&gt;R1 &amp; &#39;R2&#39;&lt;/a&gt;"
        );
        assert_eq!(tick_step(390.0, 10.0), 50.0);
        assert_eq!(tick_step(1.0, 4.0), 0.25);
        assert_eq!(tick_step(900.0, 3.0), 500.0);
    }
}
