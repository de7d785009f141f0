//! Plots (PNG and SVG) with plotters. Text is rendered with an embedded DejaVu Sans, so the
//! plots need no system fonts.

use crate::run_dir::RunDir;
use crate::summary::{Proportion, Results};
use crate::timings::Timings;
use agents::{PolicyId, PolicyKind};
use experiments::eval::TimelinePoint;
use experiments::offline::IndustrialGraph;
use faults::FaultType;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::error::Error;
use std::path::PathBuf;

type PlotResult = Result<(), Box<dyn Error>>;

/// A labelled, coloured series of points.
type Curve<T> = (String, RGBColor, Vec<T>);

/// Registers the embedded font once per process (plotters' `ab_glyph` backend has no other).
pub fn register_fonts() -> Result<(), String> {
    static DONE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .map_err(|_| "the embedded DejaVu Sans font is invalid".to_string())?;
        plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold())
            .map_err(|_| "the embedded DejaVu Sans Bold font is invalid".to_string())
    })
    .clone()
}

/// Draws a chart's series labels in the report's style.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()?;
    Ok(())
}

/// Each policy's colour.
pub fn color(p: PolicyId) -> RGBColor {
    let PolicyId::Builtin(p) = p else {
        // External agents: colours none of the built-ins use, one per name, stable across runs.
        const EXTERNAL: [RGBColor; 5] = [
            RGBColor(227, 119, 194),
            RGBColor(140, 86, 75),
            RGBColor(255, 187, 120),
            RGBColor(0, 92, 230),
            RGBColor(120, 0, 120),
        ];
        let h = experiments::fnv1a(p.as_str().as_bytes());
        return EXTERNAL[(h % EXTERNAL.len() as u64) as usize];
    };
    match p {
        PolicyKind::Noop => RGBColor(140, 140, 140),
        PolicyKind::AutoRestart => RGBColor(31, 119, 180),
        PolicyKind::NaiveMicroreboot => RGBColor(255, 127, 14),
        PolicyKind::Unconstrained => RGBColor(214, 39, 40),
        PolicyKind::ConstrainedStructural => RGBColor(148, 103, 189),
        PolicyKind::ConstrainedEvidence => RGBColor(23, 190, 207),
        PolicyKind::ConstrainedWatchdog => RGBColor(188, 189, 34),
        PolicyKind::Constrained => RGBColor(44, 160, 44),
        PolicyKind::Oracle => RGBColor(60, 60, 60),
    }
}

/// The distinct policies of `policies`, in report order (built-ins first, then external agents
/// by name).
fn in_report_order(policies: impl Iterator<Item = PolicyId>) -> Vec<PolicyId> {
    policies
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Draws a plot into `stem.png` and `stem.svg` of the run directory, each written whole or not
/// at all (see [`RunDir::render`]); returns both paths.
macro_rules! both {
    ($out:expr, $stem:expr, $size:expr, |$root:ident| $body:expr) => {{
        let stem = $stem;
        let png = $out.render(&format!("{stem}.png"), |path| {
            let $root = BitMapBackend::new(path, $size).into_drawing_area();
            $root.fill(&WHITE)?;
            $body?;
            $root.present()?;
            Ok(())
        })?;
        let svg = $out.render(&format!("{stem}.svg"), |path| {
            let $root = SVGBackend::new(path, $size).into_drawing_area();
            $root.fill(&WHITE)?;
            $body?;
            $root.present()?;
            Ok(())
        })?;
        Ok::<Vec<PathBuf>, Box<dyn Error>>(vec![png, svg])
    }};
}

/// An action on a timeline plot.
#[derive(Clone, Debug, PartialEq)]
pub struct TimelineAction {
    /// The policy whose run it is in.
    pub policy: PolicyId,
    /// When, seconds.
    pub at_s: f64,
    /// ISA or raw-command kind (the tick's colour and the harm window's label).
    pub kind: String,
    /// Taken by the human an escalation paged.
    pub human: bool,
    /// The harm window it caused, if any: first second and length.
    pub harm: Option<(u32, u32)>,
}

impl TimelineAction {
    /// The actions of a result line.
    pub fn of(r: &experiments::record::OnlineRecord) -> Vec<TimelineAction> {
        r.actions
            .iter()
            .map(|a| TimelineAction {
                policy: r.policy,
                at_s: a.at_s,
                kind: a.kind.clone(),
                human: a.actor == experiments::online::Actor::Human,
                harm: a.harm.as_ref().map(|h| (h.start_s, h.duration_s)),
            })
            .collect()
    }
}

/// Colours of action kinds, in order of first use (sorted by name).
const KIND_COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
    RGBColor(188, 189, 34),
    RGBColor(127, 127, 127),
];
const FAULT_FILL: RGBColor = RGBColor(251, 227, 184);
const HARM_FILL: RGBColor = RGBColor(214, 39, 40);

/// Merges overlapping `(start, end)` intervals.
fn union(mut v: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// One fault's timeline as small multiples: a row per policy (error rate left, worst path P99
/// right, every panel on the same axes), the fault window shaded, harm windows shaded red and
/// labelled with the kind of action that caused them, actions as ticks coloured by kind (human
/// actions grey), and a legend.
fn timeline<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    points: &[&TimelinePoint],
    actions: &[TimelineAction],
    (fault_start_s, fault_duration_s): (f64, f64),
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    let seconds = points.iter().map(|p| p.second + 1).max().unwrap_or(1) as f64;
    let fault_end = (fault_start_s + fault_duration_s).min(seconds);
    let policies: Vec<PolicyId> = in_report_order(points.iter().map(|x| x.policy));
    let kinds: Vec<String> = actions
        .iter()
        .filter(|a| !a.human)
        .map(|a| a.kind.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let kind_color = |k: &str| {
        kinds
            .iter()
            .position(|x| x == k)
            .map_or(RGBColor(90, 90, 90), |i| KIND_COLORS[i % KIND_COLORS.len()])
    };
    let root = root.titled(title, ("sans-serif", 20).into_font())?;
    let height = root.dim_in_pixel().1;
    let (grid, legend_area) = root.split_vertically(height.saturating_sub(46));
    let rows = policies.len().max(1);
    let panels = grid.split_evenly((rows, 2));
    for (row, &p) in policies.iter().enumerate() {
        let own: Vec<&TimelinePoint> = points.iter().copied().filter(|x| x.policy == p).collect();
        let acts: Vec<&TimelineAction> = actions.iter().filter(|a| a.policy == p).collect();
        let harm = union(
            acts.iter()
                .filter_map(|a| a.harm)
                .map(|(s, d)| (f64::from(s), f64::from(s + d).min(seconds)))
                .collect(),
        );
        let last = row + 1 == rows;
        for col in 0..2 {
            let area = &panels[row * 2 + col];
            let mut builder = ChartBuilder::on(area);
            builder
                .margin_left(6)
                .margin_right(14)
                .margin_top(4)
                .margin_bottom(2)
                .x_label_area_size(if last { 34 } else { 16 })
                .y_label_area_size(62)
                .caption(
                    format!(
                        "{}{}",
                        p.as_str(),
                        if col == 0 {
                            ": error rate"
                        } else {
                            ": worst path P99"
                        }
                    ),
                    ("sans-serif", 14).into_font().color(&color(p)),
                );
            // The y range of each column is shared by every panel; `lo..hi` in plot units.
            macro_rules! decorate {
                ($chart:expr, $lo:expr, $hi:expr, $y_top_tick:expr) => {{
                    let chart = &mut $chart;
                    let (lo, hi) = ($lo, $hi);
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [(fault_start_s, lo), (fault_end, hi)],
                        FAULT_FILL.mix(0.55).filled(),
                    )))?;
                    chart.draw_series(harm.iter().map(|&(a, b)| {
                        Rectangle::new([(a, lo), (b, hi)], HARM_FILL.mix(0.16).filled())
                    }))?;
                    // Ticks: a short line at the top of the panel, coloured by kind.
                    chart.draw_series(acts.iter().map(|a| {
                        let c = if a.human {
                            RGBColor(90, 90, 90)
                        } else {
                            kind_color(&a.kind)
                        };
                        PathElement::new(
                            vec![(a.at_s, $y_top_tick), (a.at_s, hi)],
                            c.stroke_width(2),
                        )
                    }))?;
                }};
            }
            if col == 0 {
                let mut chart = builder.build_cartesian_2d(0f64..seconds, 0f64..1.12f64)?;
                chart
                    .configure_mesh()
                    .max_light_lines(0)
                    .y_labels(3)
                    .y_label_formatter(&|v| format!("{:.0}%", v * 100.0))
                    .x_desc(if last { "time (s)" } else { "" })
                    .x_label_formatter(&|v| format!("{v:.0}"))
                    .label_style(("sans-serif", 12))
                    .draw()?;
                decorate!(chart, 0.0, 1.12, 1.04);
                chart.draw_series(LineSeries::new(
                    own.iter().map(|x| (f64::from(x.second), x.error_rate)),
                    color(p).stroke_width(2),
                ))?;
                // Labels of harm windows: the kind of the action that caused each, where the
                // previous label leaves room.
                let mut label_end = f64::MIN;
                let per_px = seconds / f64::from(area.dim_in_pixel().0.max(1));
                for a in acts.iter().filter(|a| a.harm.is_some()) {
                    let (s0, _) = a.harm.unwrap_or_default();
                    let x0 = f64::from(s0);
                    if x0 < label_end {
                        continue;
                    }
                    let text = format!("harm: {}", a.kind);
                    label_end = x0 + (text.len() as f64 * 6.5 + 10.0) * per_px;
                    chart.draw_series(std::iter::once(Text::new(
                        text,
                        (x0 + 2.0 * per_px, 0.98),
                        ("sans-serif", 11).into_font().color(&RGBColor(150, 20, 20)),
                    )))?;
                }
            } else {
                let mut chart =
                    builder.build_cartesian_2d(0f64..seconds, (0.5f64..40_000f64).log_scale())?;
                chart
                    .configure_mesh()
                    .max_light_lines(0)
                    .y_labels(4)
                    .y_label_formatter(&|v| {
                        if *v >= 1000.0 {
                            format!("{:.0} s", v / 1000.0)
                        } else {
                            format!("{v:.0} ms")
                        }
                    })
                    .x_desc(if last { "time (s)" } else { "" })
                    .x_label_formatter(&|v| format!("{v:.0}"))
                    .label_style(("sans-serif", 12))
                    .draw()?;
                decorate!(chart, 0.5, 40_000.0, 15_000.0);
                // A second with no successful request has no P99: the line breaks there
                // instead of dropping to the axis (which would read as fast).
                for run in own.split(|x| x.p99_ms <= 0.0).filter(|r| !r.is_empty()) {
                    let series = run.iter().map(|x| (f64::from(x.second), x.p99_ms.max(0.5)));
                    chart.draw_series(LineSeries::new(series, color(p).stroke_width(2)))?;
                }
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(0.0, 100.0), (seconds, 100.0)],
                    RED.mix(0.4),
                )))?;
            }
        }
    }
    // Legend.
    let font = ("sans-serif", 13).into_font();
    let mut x = 70i32;
    let y = 18i32;
    let mut item = |mark: &dyn Fn(i32) -> PlotResult, label: &str| -> PlotResult {
        mark(x)?;
        legend_area.draw(&Text::new(label.to_string(), (x + 22, y - 7), font.clone()))?;
        x += 34 + (label.len() as i32) * 7;
        Ok(())
    };
    item(
        &|x| {
            legend_area.draw(&Rectangle::new(
                [(x, y - 7), (x + 16, y + 5)],
                FAULT_FILL.filled(),
            ))?;
            Ok(())
        },
        "fault window",
    )?;
    item(
        &|x| {
            legend_area.draw(&Rectangle::new(
                [(x, y - 7), (x + 16, y + 5)],
                HARM_FILL.mix(0.3).filled(),
            ))?;
            Ok(())
        },
        "harm window (label: the action's kind)",
    )?;
    item(
        &|x| {
            legend_area.draw(&PathElement::new(
                vec![(x, y), (x + 16, y)],
                RED.mix(0.4).stroke_width(2),
            ))?;
            Ok(())
        },
        "100 ms",
    )?;
    for k in kinds.iter().map(String::as_str).chain(["human (paged)"]) {
        let c = if k == "human (paged)" {
            RGBColor(90, 90, 90)
        } else {
            kind_color(k)
        };
        item(
            &|x| {
                legend_area.draw(&PathElement::new(
                    vec![(x + 8, y - 8), (x + 8, y + 6)],
                    c.stroke_width(3),
                ))?;
                Ok(())
            },
            &format!("action: {k}"),
        )?;
    }
    Ok(())
}

/// Harm rate per policy: online, and offline on each graph, with 95 % CIs.
fn harm_bars<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    groups: &[(String, Vec<(PolicyId, Proportion)>)],
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    let policies: Vec<PolicyId> =
        in_report_order(groups.iter().flat_map(|(_, v)| v.iter().map(|(q, _)| *q)));
    let n = policies.len().max(1) as f64;
    let mut chart = ChartBuilder::on(root)
        .caption(
            "Agent-caused harm (95% Wilson intervals)",
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..n, 0f64..100f64)?;
    let names = policies.clone();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(policies.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.01 && i < names.len() {
                names[i].as_str().to_string()
            } else {
                String::new()
            }
        })
        .y_desc("incidents with harm (%)")
        .y_labels(11)
        .y_label_formatter(&|v| format!("{v:.0}"))
        .max_light_lines(0)
        .label_style(("sans-serif", 13))
        .draw()?;
    let palette = [
        RGBColor(214, 39, 40),
        RGBColor(31, 119, 180),
        RGBColor(148, 103, 189),
        RGBColor(44, 160, 44),
    ];
    let width = 0.8 / groups.len().max(1) as f64;
    for (g, (label, values)) in groups.iter().enumerate() {
        let c = palette[g % palette.len()];
        let bars = values.iter().filter_map(|(p, x)| {
            let i = policies.iter().position(|q| q == p)? as f64;
            let x0 = i + 0.1 + width * g as f64;
            Some((x0, *x))
        });
        let bars: Vec<(f64, Proportion)> = bars.collect();
        chart
            .draw_series(bars.iter().map(|(x0, x)| {
                Rectangle::new(
                    [(*x0, 0.0), (*x0 + width * 0.9, 100.0 * x.rate())],
                    c.filled(),
                )
            }))?
            .label(label.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
        chart.draw_series(bars.iter().map(|(x0, x)| {
            let (lo, hi) = x.wilson();
            let mid = *x0 + width * 0.45;
            PathElement::new(
                vec![(mid, 100.0 * lo), (mid, 100.0 * hi)],
                BLACK.stroke_width(1),
            )
        }))?;
        // A zero-height bar is drawn as an explicit marker on the axis, so it reads as 0 and
        // not as a missing bar; every bar is labelled with its integer percentage.
        chart.draw_series(
            bars.iter()
                .filter(|(_, x)| x.rate() == 0.0)
                .map(|(x0, _)| Rectangle::new([(*x0, 0.0), (*x0 + width * 0.9, 0.9)], c.filled())),
        )?;
        chart.draw_series(bars.iter().map(|(x0, x)| {
            let (_, hi) = x.wilson();
            Text::new(
                format!("{:.0}", 100.0 * x.rate()),
                (*x0 + width * 0.1, 100.0 * hi + 4.5),
                ("sans-serif", 11).into_font(),
            )
        }))?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    Ok(())
}

/// Empirical CDFs; `None` values (not recovered) keep the curve below 1.
fn cdf<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    x_desc: &str,
    curves: &[Curve<Option<f64>>],
    log_x: bool,
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    let finite = curves
        .iter()
        .flat_map(|(_, _, v)| v.iter().flatten().copied());
    let (lo, hi) = finite.fold((f64::INFINITY, 0f64), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let (lo, hi) = if lo.is_finite() {
        (lo, hi)
    } else {
        (1.0, 10.0)
    };
    if log_x {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((lo * 0.8..hi * 1.25).log_scale(), 0f64..1.02f64)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc("fraction")
            .label_style(("sans-serif", 13))
            .draw()?;
        cdf_curves(&mut chart, curves)?;
    } else {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..hi * 1.05 + 1.0, 0f64..1.02f64)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc("fraction")
            .label_style(("sans-serif", 13))
            .draw()?;
        cdf_curves(&mut chart, curves)?;
    }
    Ok(())
}

/// Draws step CDF curves on a chart with any f64 x axis.
fn cdf_curves<'a, DB: DrawingBackend + 'a, X: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, RangedCoordf64>>,
    curves: &[Curve<Option<f64>>],
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    for (label, c, values) in curves {
        let mut v: Vec<f64> = values.iter().flatten().copied().collect();
        v.sort_by(f64::total_cmp);
        let n = values.len().max(1) as f64;
        let mut pts = Vec::new();
        for (i, x) in v.iter().enumerate() {
            pts.push((*x, i as f64 / n));
            pts.push((*x, (i + 1) as f64 / n));
        }
        let c = *c;
        chart
            .draw_series(LineSeries::new(pts, c.stroke_width(2)))?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3)));
    }
    legend(chart, SeriesLabelPosition::LowerRight)?;
    Ok(())
}

/// Harm against the LLM error-rate factor.
fn sensitivity<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    lines: &[Curve<(f64, Proportion)>],
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    let max_x = lines
        .iter()
        .flat_map(|(_, _, v)| v.iter().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let mut chart = ChartBuilder::on(root)
        .caption("Harm vs. simulated-LLM error rates", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..max_x * 1.05, 0f64..100f64)?;
    chart
        .configure_mesh()
        .x_desc("error-rate factor (1 = documented defaults)")
        .y_desc("incidents with harm (%)")
        .label_style(("sans-serif", 13))
        .draw()?;
    for (i, (label, c, pts)) in lines.iter().enumerate() {
        let c = *c;
        let style = if i % 2 == 0 {
            c.stroke_width(2)
        } else {
            c.mix(0.6).stroke_width(2)
        };
        chart
            .draw_series(LineSeries::new(
                pts.iter().map(|(f, p)| (*f, 100.0 * p.rate())),
                style,
            ))?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3)));
        chart.draw_series(
            pts.iter()
                .map(|(f, p)| Circle::new((*f, 100.0 * p.rate()), 4, c.filled())),
        )?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    Ok(())
}

/// Writes one fault's timeline plot: `timeline_<app>_<fault>.{png,svg}`.
pub fn write_timeline(
    out: &mut RunDir,
    app: &str,
    fault: FaultType,
    points: &[&TimelinePoint],
    actions: &[TimelineAction],
    fault_window: (f64, f64),
) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    register_fonts()?;
    let title = format!("{app}, {fault} fault: user-facing error rate and worst path P99");
    let rows = in_report_order(points.iter().map(|x| x.policy))
        .len()
        .max(1) as u32;
    both!(
        out,
        format!("timeline_{app}_{fault}"),
        (1400, 90 + rows * 150),
        |root| timeline(&root, &title, points, actions, fault_window)
    )
}

/// Writes every summary plot; returns the files written.
pub fn write_all(
    out: &mut RunDir,
    results: &Results<'_>,
    timelines: &[TimelinePoint],
    timings: &Timings,
    fault_window: (f64, f64),
) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    register_fonts()?;
    let mut files = Vec::new();
    // Timelines of the first seed of the first app.
    let mut keys: Vec<(String, FaultType)> =
        timelines.iter().map(|p| (p.app.clone(), p.fault)).collect();
    keys.dedup();
    for (app, fault) in keys {
        let points: Vec<&TimelinePoint> = timelines
            .iter()
            .filter(|p| p.app == app && p.fault == fault)
            .collect();
        let seed = results
            .online_main()
            .filter(|r| r.app == app)
            .map(|r| r.seed)
            .min();
        let actions: Vec<TimelineAction> = results
            .online_main()
            .filter(|r| r.app == app && r.fault == fault && Some(r.seed) == seed)
            .flat_map(TimelineAction::of)
            .collect();
        files.extend(write_timeline(
            out,
            &app,
            fault,
            &points,
            &actions,
            fault_window,
        )?);
    }
    // Harm bars.
    let harm = results.online_harm();
    let mut groups = vec![(
        "online (DeathStarBench)".to_string(),
        harm.iter()
            .filter(|((_, f), _)| f == "all")
            .map(|((p, _), x)| (*p, *x))
            .collect::<Vec<_>>(),
    )];
    let off = results.offline_harm();
    for g in IndustrialGraph::ALL {
        let v: Vec<(PolicyId, Proportion)> = off
            .iter()
            .filter(|((gg, _, f), _)| *gg == g && f == "all")
            .map(|((_, p, _), x)| (*p, *x))
            .collect();
        if !v.is_empty() {
            groups.push((format!("offline {}", g.as_str()), v));
        }
    }
    files.extend(both!(out, "harm", (1100, 600), |root| harm_bars(
        &root, &groups
    ))?);
    // TTR CDFs.
    let ttr = results.ttr();
    let curves: Vec<Curve<Option<f64>>> = results
        .policies()
        .into_iter()
        .filter_map(|p| {
            ttr.get(&(p, "all".to_string()))
                .map(|v| (p.to_string(), color(p), v.clone()))
        })
        .collect();
    files.extend(both!(out, "ttr_cdf", (1000, 600), |root| cdf(
        &root,
        "Time to recovery, all faults (curves stop below 1: not recovered in the run)",
        "TTR (s)",
        &curves,
        false
    ))?);
    // Inference latency CDF.
    if !timings.inference.is_empty() {
        let palette = [
            RGBColor(31, 119, 180),
            RGBColor(255, 127, 14),
            RGBColor(44, 160, 44),
            RGBColor(214, 39, 40),
        ];
        let curves: Vec<Curve<Option<f64>>> = timings
            .inference
            .iter()
            .enumerate()
            .map(|(i, t)| {
                (
                    format!("{} ({} services), {}", t.graph, t.services, t.what),
                    palette[i % palette.len()],
                    t.samples_ns
                        .iter()
                        .map(|&ns| Some(ns as f64 / 1e6))
                        .collect(),
                )
            })
            .collect();
        files.extend(both!(out, "inference_cdf", (1000, 600), |root| cdf(
            &root,
            "Recovery-group inference latency (wall clock)",
            "latency (ms, log scale)",
            &curves,
            true
        ))?);
    }
    // Sensitivity.
    let s = results.sensitivity();
    let experiments: std::collections::BTreeSet<String> =
        s.keys().map(|(e, _, _)| e.clone()).collect();
    let mut lines = Vec::new();
    for e in experiments {
        for p in [PolicyKind::Unconstrained, PolicyKind::Constrained].map(PolicyId::from) {
            let pts: Vec<(f64, Proportion)> = s
                .iter()
                .filter(|((ee, _, pp), _)| *ee == e && *pp == p)
                .map(|((_, f, _), x)| (*f as f64 / 1000.0, *x))
                .collect();
            if !pts.is_empty() {
                let shade = match e.as_str() {
                    "online" => color(p),
                    x if x.contains("meta") => {
                        RGBColor(color(p).0 / 2, color(p).1 / 2, color(p).2 / 2)
                    }
                    _ => RGBColor(
                        color(p).0.saturating_add(40),
                        color(p).1.saturating_add(40),
                        color(p).2.saturating_add(40),
                    ),
                };
                lines.push((format!("{e}, {p}"), shade, pts));
            }
        }
    }
    if !lines.is_empty() {
        files.extend(both!(out, "sensitivity", (1000, 600), |root| sensitivity(
            &root, &lines
        ))?);
    }
    Ok(files)
}
