//! Checks the training examples make, so that a run which cannot end well stops early and says
//! why: a checkpoint path that cannot be written, a loss that is no longer a number, a
//! checkpoint holding NaN or infinity.

use std::path::Path;

use wgrnn::core::SafetensorsFile;
use wgrnn::{Error, Result};

/// Opens `path` for writing before the training, so that a directory or an unwritable path
/// fails now rather than after the run, losing its weights. A file this check creates is
/// removed again: a run that fails later leaves nothing behind.
pub fn check_writable(path: &Path) -> Result<()> {
    let io = |message: String| Error::Io {
        path: path.display().to_string(),
        message,
    };
    if path.is_dir() {
        return Err(io("is a directory; --save takes a file name".into()));
    }
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| io(format!("cannot be written: {e}")))?;
    if !existed {
        std::fs::remove_file(path).map_err(|e| io(format!("cannot remove the probe: {e}")))?;
    }
    Ok(())
}

/// `loss` of a training step, or an error once it is NaN or infinite: every later step would be
/// too, and a checkpoint of such weights is worth nothing.
pub fn finite_loss(epoch: usize, step: usize, loss: f64) -> Result<f64> {
    if loss.is_finite() {
        return Ok(loss);
    }
    Err(Error::InvalidArgument {
        op: "training",
        arg: "loss",
        reason: format!(
            "is {loss} at epoch {epoch}, step {step}: training diverged (try a lower --lr); \
             nothing was saved"
        ),
    })
}

/// An error naming the first tensor of `f` (in name order) with a NaN or infinite value, read
/// in f32 as the device holds it (an f64 value past f32's range is infinite there).
pub fn finite_checkpoint(f: &SafetensorsFile) -> Result<()> {
    for (name, t) in &f.tensors {
        let values = match t.to_real::<f32>(name) {
            Ok(v) => v,
            Err(Error::Dtype { .. }) => continue,
            Err(e) => return Err(e),
        };
        if let Some(i) = values.data().iter().position(|v| !v.is_finite()) {
            return Err(Error::InvalidArgument {
                op: "checkpoint",
                arg: "tensor",
                reason: format!(
                    "`{name}` holds {} at flat index {i}: the weights are not usable",
                    values.data()[i]
                ),
            });
        }
    }
    Ok(())
}
