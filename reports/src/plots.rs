//! Plots (PNG and SVG) with plotters. Text is rendered with an embedded DejaVu Sans, so the
//! plots need no system fonts.

use crate::run_dir::RunDir;
use crate::summary::{Proportion, Results};
use crate::timings::Timings;
use agents::PolicyKind;
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
pub fn color(p: PolicyKind) -> RGBColor {
    match p {
        PolicyKind::Noop => RGBColor(140, 140, 140),
        PolicyKind::AutoRestart => RGBColor(31, 119, 180),
        PolicyKind::NaiveMicroreboot => RGBColor(255, 127, 14),
        PolicyKind::Unconstrained => RGBColor(214, 39, 40),
        PolicyKind::ConstrainedStructural => RGBColor(148, 103, 189),
        PolicyKind::Constrained => RGBColor(44, 160, 44),
        PolicyKind::Oracle => RGBColor(60, 60, 60),
    }
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

/// One fault's timeline: user-facing error rate and worst path P99 per second, a line per
/// policy, the fault's start, and each policy's actions as triangles.
fn timeline<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    points: &[&TimelinePoint],
    actions: &[(PolicyKind, f64)],
    fault_start_s: f64,
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    let seconds = points.iter().map(|p| p.second + 1).max().unwrap_or(1) as f64;
    let policies: Vec<PolicyKind> = PolicyKind::ALL
        .into_iter()
        .filter(|p| points.iter().any(|x| x.policy == *p))
        .collect();
    let root = root.titled(title, ("sans-serif", 22).into_font())?;
    let (upper, lower) = root.split_vertically(root.dim_in_pixel().1 / 2);
    let mut err = ChartBuilder::on(&upper)
        .margin(10)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..seconds, 0f64..1.05f64)?;
    err.configure_mesh()
        .x_desc("time (s)")
        .y_desc("error rate")
        .label_style(("sans-serif", 14))
        .draw()?;
    for &p in &policies {
        let series = points
            .iter()
            .filter(|x| x.policy == p)
            .map(|x| (f64::from(x.second), x.error_rate));
        err.draw_series(LineSeries::new(series, color(p).stroke_width(2)))?
            .label(p.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color(p).stroke_width(3))
            });
    }
    err.draw_series(std::iter::once(PathElement::new(
        vec![(fault_start_s, 0.0), (fault_start_s, 1.05)],
        BLACK.stroke_width(1),
    )))?;
    err.draw_series(actions.iter().map(|(p, at)| {
        let row = policies.iter().position(|x| x == p).unwrap_or(0) as f64;
        TriangleMarker::new((*at, 1.0 - 0.04 * row), 6, color(*p).filled())
    }))?;
    legend(&mut err, SeriesLabelPosition::UpperLeft)?;
    let mut lat = ChartBuilder::on(&lower)
        .margin(10)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..seconds, (0.5f64..20_000f64).log_scale())?;
    lat.configure_mesh()
        .x_desc("time (s)")
        .y_desc("worst path P99 (ms)")
        .label_style(("sans-serif", 14))
        .draw()?;
    // A second with no successful request has no P99: the line breaks there instead of
    // dropping to the axis (which would read as fast).
    for &p in &policies {
        let own: Vec<&TimelinePoint> = points.iter().copied().filter(|x| x.policy == p).collect();
        for run in own.split(|x| x.p99_ms <= 0.0).filter(|r| !r.is_empty()) {
            let series = run.iter().map(|x| (f64::from(x.second), x.p99_ms.max(0.5)));
            lat.draw_series(LineSeries::new(series, color(p).stroke_width(2)))?;
        }
    }
    lat.draw_series(std::iter::once(PathElement::new(
        vec![(fault_start_s, 0.5), (fault_start_s, 20_000.0)],
        BLACK,
    )))?;
    lat.draw_series(std::iter::once(PathElement::new(
        vec![(0.0, 100.0), (seconds, 100.0)],
        RED.mix(0.5),
    )))?;
    Ok(())
}

/// Harm rate per policy: online, and offline on each graph, with 95 % CIs.
fn harm_bars<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    groups: &[(String, Vec<(PolicyKind, Proportion)>)],
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    let policies: Vec<PolicyKind> = PolicyKind::ALL
        .into_iter()
        .filter(|p| groups.iter().any(|(_, v)| v.iter().any(|(q, _)| q == p)))
        .collect();
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
                BLACK.stroke_width(2),
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
    actions: &[(PolicyKind, f64)],
    fault_start_s: f64,
) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    register_fonts()?;
    let title =
        format!("{app}, {fault} fault: user-facing error rate and P99 (triangles: actions)");
    both!(
        out,
        format!("timeline_{app}_{fault}"),
        (1200, 800),
        |root| timeline(&root, &title, points, actions, fault_start_s)
    )
}

/// Writes every summary plot; returns the files written.
pub fn write_all(
    out: &mut RunDir,
    results: &Results<'_>,
    timelines: &[TimelinePoint],
    timings: &Timings,
    fault_start_s: f64,
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
        let actions: Vec<(PolicyKind, f64)> = results
            .online_main()
            .filter(|r| r.app == app && r.fault == fault && Some(r.seed) == seed)
            .flat_map(|r| r.actions.iter().map(move |a| (r.policy, a.at_s)))
            .collect();
        files.extend(write_timeline(
            out,
            &app,
            fault,
            &points,
            &actions,
            fault_start_s,
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
        let v: Vec<(PolicyKind, Proportion)> = off
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
        for p in [PolicyKind::Unconstrained, PolicyKind::Constrained] {
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
