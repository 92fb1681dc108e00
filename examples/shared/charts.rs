//! What the examples' pictures share (plotters, PNG): the bundled font and the training-loss
//! panel, per step on a log scale with each epoch's mean.

use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

/// The bundled font (DejaVu Sans Mono, licence in examples/assets/FONT-LICENSE), so text needs
/// no system font libraries.
static FONT: &[u8] = include_bytes!("../assets/DejaVuSansMono.ttf");

pub type PlotResult = Result<(), Box<dyn std::error::Error>>;

/// Registers the bundled font for every family the charts name (once).
pub fn fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for family in ["sans-serif", "serif", "monospace"] {
            // The bytes are a valid TrueType font; a failure would leave text undrawn, which
            // plotters then reports as a drawing error.
            let _ = register_font(family, FontStyle::Normal, FONT);
        }
    });
}

/// The loss of every step (log scale, x in epochs) and each epoch's mean loss (`epoch_means`,
/// at the epoch's end) on `area`; the axis starts at the lowest step loss clamped into
/// [1e-4, `floor_max`].
pub fn loss_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    y_desc: &str,
    step_loss: &[f64],
    epoch_means: &[f64],
    floor_max: f64,
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    let epochs = epoch_means.len().max(1) as f64;
    let per_epoch = step_loss.len() as f64 / epochs;
    let lo = step_loss
        .iter()
        .cloned()
        .fold(f64::INFINITY, f64::min)
        .clamp(1e-4, floor_max);
    let hi = step_loss.iter().cloned().fold(lo * 10.0, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption(format!("training loss ({title})"), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..epochs, (lo * 0.8..hi * 1.2).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_desc)
        .draw()?;
    chart
        .draw_series(LineSeries::new(
            step_loss
                .iter()
                .enumerate()
                .map(|(i, &l)| ((i as f64 + 1.0) / per_epoch, l.max(lo))),
            BLUE.mix(0.5),
        ))?
        .label("per step")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLUE.mix(0.5)));
    chart
        .draw_series(LineSeries::new(
            epoch_means
                .iter()
                .enumerate()
                .map(|(i, &m)| (i as f64 + 1.0, m.max(lo))),
            RED.stroke_width(2),
        ))?
        .label("epoch mean")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RED.stroke_width(2)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
