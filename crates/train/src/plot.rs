//! Line charts with vertical markers, written as PNG and SVG (plotters):
//! loss curves, gradient histograms with f16's limits marked, loss-scale
//! sweeps. Text uses the DejaVu Sans Mono font shipped in `fonts/` (so a
//! machine without system fonts renders the same PNG).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::{ExampleError, Result};

const FONT: &str = "sans-serif";
const SIZE: (u32, u32) = (900, 560);

/// One named line.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Its legend entry.
    pub name: String,
    /// Its points, in x order.
    pub points: Vec<(f64, f64)>,
}

/// A chart: lines, vertical markers, titles.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    /// The caption.
    pub title: String,
    /// The x axis description.
    pub x_label: String,
    /// The y axis description.
    pub y_label: String,
    /// A logarithmic y axis (values ≤ 0 are dropped).
    pub log_y: bool,
    /// The lines.
    pub series: Vec<Series>,
    /// Vertical dashed lines at x with a legend entry each.
    pub markers: Vec<(f64, String)>,
}

fn register_font() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        // The bytes are the font shipped beside this crate; it parses.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, include_bytes!("../fonts/DejaVuSansMono.ttf"));
    });
}

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

impl Chart {
    /// Writes `<stem>.png` and `<stem>.svg`; returns both paths.
    pub fn write(&self, stem: &Path) -> Result<[PathBuf; 2]> {
        register_font();
        let png = stem.with_extension("png");
        let svg = stem.with_extension("svg");
        let fail = |path: &Path, e: String| ExampleError::Output { path: path.to_owned(), reason: e };
        {
            let root = BitMapBackend::new(&png, SIZE).into_drawing_area();
            self.draw(&root).map_err(|e| fail(&png, e))?;
        }
        {
            let root = SVGBackend::new(&svg, SIZE).into_drawing_area();
            self.draw(&root).map_err(|e| fail(&svg, e))?;
        }
        Ok([png, svg])
    }

    fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let keep = |y: f64| y.is_finite() && (!self.log_y || y > 0.0);
        let pts = || self.series.iter().flat_map(|s| s.points.iter()).filter(|p| p.0.is_finite() && keep(p.1));
        let xs = pts().map(|p| p.0).chain(self.markers.iter().map(|m| m.0));
        let (mut x0, mut x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
        let (mut y0, mut y1) =
            pts().map(|p| p.1).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| (a.min(y), b.max(y)));
        if x0.partial_cmp(&x1) != Some(std::cmp::Ordering::Less) {
            (x0, x1) = (x0.min(0.0) - 1.0, x1.max(0.0) + 1.0);
        }
        if y0.partial_cmp(&y1) != Some(std::cmp::Ordering::Less) {
            (y0, y1) = if self.log_y { (1e-3, 1.0) } else { (y0.min(0.0) - 1.0, y1.max(0.0) + 1.0) };
        }
        if self.log_y {
            (y0, y1) = (y0 / 1.5, y1 * 1.5);
        } else {
            let pad = (y1 - y0) * 0.05;
            (y0, y1) = (y0 - pad, y1 + pad);
        }
        ((x0, x1), (y0, y1))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> std::result::Result<(), String> {
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(e)?;
        let ((x0, x1), (y0, y1)) = self.ranges();
        let mut builder = ChartBuilder::on(root);
        builder.caption(&self.title, (FONT, 22)).margin(20).x_label_area_size(50).y_label_area_size(80);
        if self.log_y {
            let mut chart = builder.build_cartesian_2d(x0..x1, (y0..y1).log_scale()).map_err(e)?;
            chart
                .configure_mesh()
                .x_desc(&self.x_label)
                .y_desc(&self.y_label)
                .label_style((FONT, 14))
                .y_label_formatter(&|y| format!("{y:.0e}"))
                .draw()
                .map_err(e)?;
            self.draw_lines(&mut chart, y0, y1).map_err(e)?;
            legend(&mut chart).map_err(e)?;
        } else {
            let mut chart = builder.build_cartesian_2d(x0..x1, y0..y1).map_err(e)?;
            chart
                .configure_mesh()
                .x_desc(&self.x_label)
                .y_desc(&self.y_label)
                .label_style((FONT, 14))
                .draw()
                .map_err(e)?;
            self.draw_lines(&mut chart, y0, y1).map_err(e)?;
            legend(&mut chart).map_err(e)?;
        }
        root.present().map_err(e)
    }

    fn draw_lines<'a, DB, Y>(
        &self,
        chart: &mut ChartContext<'a, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
        y0: f64,
        y1: f64,
    ) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>>
    where
        DB: DrawingBackend + 'a,
        Y: Ranged<ValueType = f64>,
    {
        for (i, s) in self.series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let pts: Vec<(f64, f64)> =
                s.points.iter().copied().filter(|p| p.1.is_finite() && (!self.log_y || p.1 > 0.0)).collect();
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))?
                .label(s.name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        for (i, (x, name)) in self.markers.iter().enumerate() {
            let color = [BLACK, RGBColor(200, 0, 0), RGBColor(0, 120, 0)][i % 3];
            let style = color.stroke_width(2);
            chart
                .draw_series(DashedLineSeries::new(vec![(*x, y0), (*x, y1)], 8, 5, style))?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
        Ok(())
    }
}

fn legend<'a, DB: DrawingBackend + 'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .draw()
}

/// Counts of `|x|` by power of two: `bins[i]` holds values in
/// `[2^(lo+i), 2^(lo+i+1))`, and the zeros apart.
#[derive(Clone, Debug, PartialEq)]
pub struct Log2Histogram {
    /// The exponent of the first bin.
    pub lo: i32,
    /// Counts per bin (values below `2^lo` go in the first, above the last bin in the last).
    pub bins: Vec<u64>,
    /// Exact zeros.
    pub zeros: u64,
    /// All values counted.
    pub total: u64,
}

impl Log2Histogram {
    /// An empty histogram over `[2^lo, 2^hi)`.
    pub fn new(lo: i32, hi: i32) -> Log2Histogram {
        Log2Histogram { lo, bins: vec![0; (hi - lo).max(1) as usize], zeros: 0, total: 0 }
    }

    /// Counts every finite value of `values` times `scale`.
    pub fn add(&mut self, values: &[f32], scale: f64) {
        for &v in values {
            let a = f64::from(v).abs() * scale;
            if !a.is_finite() {
                continue;
            }
            self.total += 1;
            if a == 0.0 {
                self.zeros += 1;
                continue;
            }
            let e = a.log2().floor() as i64 - i64::from(self.lo);
            let i = e.clamp(0, self.bins.len() as i64 - 1) as usize;
            self.bins[i] += 1;
        }
    }

    /// `(log2 of the bin's lower edge, fraction of all values)` per bin.
    pub fn points(&self) -> Vec<(f64, f64)> {
        let n = self.total.max(1) as f64;
        self.bins.iter().enumerate().map(|(i, &c)| (f64::from(self.lo + i as i32), c as f64 / n)).collect()
    }

    /// The fraction of nonzero values below `2^e`.
    pub fn fraction_below(&self, e: i32) -> f64 {
        let nonzero = self.total - self.zeros;
        let below: u64 = self.bins.iter().take((e - self.lo).max(0) as usize).sum();
        below as f64 / nonzero.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_histogram_bins_by_exponent() {
        let mut h = Log2Histogram::new(-30, 5);
        h.add(&[0.0, 1.0, 1.5, 0.25, 2f32.powi(-25), f32::NAN, -3.0], 1.0);
        assert_eq!((h.total, h.zeros), (6, 1));
        assert_eq!(h.bins[30], 2, "1 and 1.5 are in [2^0, 2^1)");
        assert_eq!(h.bins[28], 1);
        assert_eq!(h.bins[31], 1, "|-3| is in [2^1, 2^2)");
        assert_eq!(h.bins[5], 1);
        assert!((h.fraction_below(-24) - 0.2).abs() < 1e-12);
    }
}
