//! The example's picture: training loss per step beside held-out accuracy per epoch, with the
//! best a bag of words can score drawn as a line (plotters, PNG).

use std::path::Path;

use plotters::prelude::*;

use super::charts::{PlotResult, fonts, loss_panel};

/// What the run records: the loss of every step, held-out accuracy at points of the run
/// (epoch as a fraction, accuracy), and (mean loss, held-out accuracy) per epoch.
#[derive(Clone, Debug, Default)]
pub struct Curves {
    pub step_loss: Vec<f64>,
    pub accuracy: Vec<(f64, f64)>,
    pub epochs: Vec<(f64, f64)>,
}

/// Training loss per step (log scale) beside held-out accuracy over the run (each epoch's end
/// marked); `ceiling` (a fraction) is drawn across the accuracy chart as the bag-of-words
/// bound.
pub fn curves(path: &Path, c: &Curves, title: &str, ceiling: f64) -> PlotResult {
    fonts();
    let root = BitMapBackend::new(path, (1200, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(600);
    let epochs = c.epochs.len().max(1) as f64;
    let means: Vec<f64> = c.epochs.iter().map(|e| e.0).collect();
    loss_panel(
        &left,
        title,
        "binary cross-entropy",
        &c.step_loss,
        &means,
        0.5,
    )?;

    let mut chart = ChartBuilder::on(&right)
        .caption("held-out accuracy", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..epochs, 40.0..100.0)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("% of reviews right")
        .draw()?;
    chart
        .draw_series(LineSeries::new(
            c.accuracy.iter().map(|&(x, a)| (x, 100.0 * a)),
            GREEN.stroke_width(2),
        ))?
        .label("bidirectional LSTM")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], GREEN.stroke_width(2)));
    chart.draw_series(
        c.epochs
            .iter()
            .enumerate()
            .map(|(i, e)| Circle::new((i as f64 + 1.0, 100.0 * e.1), 3, GREEN.filled())),
    )?;
    chart
        .draw_series(LineSeries::new(
            [(0.0, 100.0 * ceiling), (epochs, 100.0 * ceiling)],
            BLACK.mix(0.6),
        ))?
        .label("best bag of words")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK.mix(0.6)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
