//! The main example's pictures: training curves and attention heatmaps (plotters, PNG).

use std::path::Path;

use plotters::prelude::*;

use super::charts::{PlotResult, fonts, loss_panel};

use super::data::Example;
use super::model::TARGET_LEN;

/// What the run records: the loss of every step, and (mean loss, held-out exact match) per
/// epoch.
#[derive(Clone, Debug, Default)]
pub struct Curves {
    pub step_loss: Vec<f64>,
    pub epochs: Vec<(f64, f64)>,
}

/// Training loss per step (log scale) beside held-out exact match per epoch.
pub fn curves(path: &Path, c: &Curves, title: &str) -> PlotResult {
    fonts();
    let root = BitMapBackend::new(path, (1200, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(600);
    let epochs = c.epochs.len().max(1) as f64;
    let means: Vec<f64> = c.epochs.iter().map(|e| e.0).collect();
    loss_panel(
        &left,
        title,
        "cross-entropy per character",
        &c.step_loss,
        &means,
        1.0,
    )?;

    let mut chart = ChartBuilder::on(&right)
        .caption("held-out exact match", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..epochs, 0.0..100.0)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("% of dates exactly right")
        .draw()?;
    chart.draw_series(LineSeries::new(
        c.epochs
            .iter()
            .enumerate()
            .map(|(i, e)| (i as f64 + 1.0, 100.0 * e.1)),
        GREEN.stroke_width(2),
    ))?;
    chart.draw_series(
        c.epochs
            .iter()
            .enumerate()
            .map(|(i, e)| Circle::new((i as f64 + 1.0, 100.0 * e.1), 3, GREEN.filled())),
    )?;
    root.present()?;
    Ok(())
}

/// One heatmap per example: input characters across, output characters down, each cell the
/// attention weight the decoder gave that input character while writing that output
/// character. `weights` is `[B, 10, t_in]` as returned by greedy decoding.
pub fn attention(
    path: &Path,
    examples: &[Example],
    predicted: &[String],
    weights: &[f32],
    t_in: usize,
) -> PlotResult {
    fonts();
    let n = examples.len();
    if weights.len() != n * TARGET_LEN * t_in || predicted.len() != n {
        return Err(format!(
            "attention plot: weights hold {} values, expected {n}×{TARGET_LEN}×{t_in}",
            weights.len()
        )
        .into());
    }
    let cell = 22i32;
    let panel_w = 80 + cell * t_in as i32 + 20;
    let panel_h = 60 + cell * TARGET_LEN as i32 + 40;
    let cols = n.clamp(1, 2);
    let rows = n.div_ceil(cols).max(1);
    let root = BitMapBackend::new(
        path,
        (
            (panel_w * cols as i32) as u32,
            (panel_h * rows as i32) as u32,
        ),
    )
    .into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((rows, cols));
    let label = ("monospace", 16).into_font().color(&BLACK);
    for (k, (e, panel)) in examples.iter().zip(panels.iter()).enumerate() {
        let chars: Vec<char> = e.input.chars().collect();
        let out: Vec<char> = predicted[k].chars().collect();
        panel.draw_text(
            &format!("{:?} -> {}", e.input, predicted[k]),
            &("sans-serif", 16).into_font().color(&BLACK),
            (10, 10),
        )?;
        let (x0, y0) = (60, 50);
        for s in 0..TARGET_LEN {
            for (j, _) in chars.iter().enumerate().take(t_in) {
                let w = weights[(k * TARGET_LEN + s) * t_in + j].clamp(0.0, 1.0) as f64;
                // White (0) to dark blue (1).
                let shade = |c: u8| (255.0 - (255.0 - c as f64) * w) as u8;
                let color = RGBColor(shade(16), shade(48), shade(160));
                let (x, y) = (x0 + cell * j as i32, y0 + cell * s as i32);
                panel.draw(&Rectangle::new(
                    [(x, y), (x + cell - 1, y + cell - 1)],
                    color.filled(),
                ))?;
            }
            let c = out.get(s).copied().unwrap_or('?');
            panel.draw_text(&c.to_string(), &label, (x0 - 18, y0 + cell * s as i32 + 3))?;
        }
        for (j, c) in chars.iter().enumerate().take(t_in) {
            let c = if *c == ' ' { '␣' } else { *c };
            panel.draw_text(
                &c.to_string(),
                &label,
                (x0 + cell * j as i32 + 6, y0 + cell * TARGET_LEN as i32 + 4),
            )?;
        }
    }
    root.present()?;
    Ok(())
}
