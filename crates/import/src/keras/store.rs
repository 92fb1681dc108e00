//! `model.weights.h5`: Keras 3 keeps each layer's variables as datasets `0`, `1`, … of the
//! group `layers/<name>/vars` (a recurrent layer's in `layers/<name>/cell/vars`, a
//! `Bidirectional`'s under `forward_layer/` and `backward_layer/`).

use hdf5_reader::{Datatype, Hdf5File, OpenOptions};

use crate::Source;
use wgrnn_core::Result;

// Keras writes every variable as an uncompressed contiguous dataset, whose bytes lie inside
// model.weights.h5: a dataset is refused when its data would be longer than the whole file, and
// chunked (possibly compressed) ones are refused outright. The HDF5 decoder returns fill values
// for data never written, so without this bound a small file could ask for any allocation.

/// One variable: its shape and its elements as f32.
#[derive(Debug)]
pub(crate) struct Var {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

pub(crate) struct Store {
    file: Hdf5File,
    limit: usize,
}

/// The error of the HDF5 decoder reading `path` (for `item`, a layer or the whole file).
fn h5_err(src: &Source, item: &str, path: &str, e: hdf5_reader::error::Error) -> wgrnn_core::Error {
    src.err(
        item,
        path,
        format!("cannot be read from model.weights.h5: {e}"),
    )
}

impl Store {
    pub(crate) fn open(src: &Source, bytes: Vec<u8>) -> Result<Self> {
        let limit = bytes.len();
        let options = OpenOptions::default()
            .with_max_read_bytes(limit)
            .with_max_chunk_bytes(limit.min(hdf5_reader::DEFAULT_MAX_CHUNK_BYTES));
        let file = Hdf5File::from_vec_with_options(bytes, options)
            .map_err(|e| h5_err(src, "model.weights.h5", "(file)", e))?;
        Ok(Self { file, limit })
    }

    /// The `count` variables of the group `vars` (a path like `layers/lstm/cell/vars`), in
    /// order; a group holding another number of them is refused.
    pub(crate) fn vars(
        &self,
        src: &Source,
        item: &str,
        vars: &str,
        count: usize,
    ) -> Result<Vec<Var>> {
        let group = self
            .file
            .group(vars)
            .map_err(|e| h5_err(src, item, vars, e))?;
        let (_, mut names) = group
            .member_names()
            .map_err(|e| h5_err(src, item, vars, e))?;
        names.sort_by_key(|n| n.parse::<usize>().unwrap_or(usize::MAX));
        let want: Vec<String> = (0..count).map(|k| k.to_string()).collect();
        if names != want {
            return Err(src.err(
                item,
                vars,
                format!("holds variables {names:?}, expected {want:?} for this layer's config"),
            ));
        }
        want.iter()
            .map(|k| self.var(src, item, &format!("{vars}/{k}")))
            .collect()
    }

    fn var(&self, src: &Source, item: &str, path: &str) -> Result<Var> {
        let ds = self
            .file
            .dataset(path)
            .map_err(|e| h5_err(src, item, path, e))?;
        let shape: Option<Vec<usize>> = ds
            .shape()
            .iter()
            .map(|&d| usize::try_from(d).ok())
            .collect();
        let size = match ds.dtype() {
            Datatype::FloatingPoint {
                size: s @ (4 | 8), ..
            } => *s as usize,
            other => {
                return Err(src.err(
                    item,
                    path,
                    format!("has type {other:?}, expected float32 or float64"),
                ));
            }
        };
        let bytes = shape
            .as_deref()
            .and_then(wgrnn_core::tensor::checked_numel)
            .and_then(|n| n.checked_mul(size));
        let (Some(shape), Some(bytes)) = (shape, bytes) else {
            return Err(src.err(
                item,
                path,
                format!("has dims {:?}, more elements than usize counts", ds.shape()),
            ));
        };
        if bytes > self.limit {
            return Err(src.err(
                item,
                path,
                format!(
                    "has dims {shape:?}, {bytes} bytes, more than a file of this size can hold \
                     ({} bytes)",
                    self.limit
                ),
            ));
        }
        if let Some(chunks) = ds.chunks() {
            return Err(src.err(
                item,
                path,
                format!(
                    "is chunked (chunks {chunks:?}), which Keras does not write: its data may be \
                     compressed or never written; save it with Keras, whose datasets are contiguous"
                ),
            ));
        }
        // float64 is read whole, then narrowed to float32.
        let decoded = bytes.saturating_add(if size == 8 { bytes / 2 } else { 0 });
        src.spend(item, path, decoded)?;
        let data = if size == 4 {
            ds.read_array::<f32>().map(|a| a.into_iter().collect())
        } else {
            ds.read_array::<f64>()
                .map(|a| a.into_iter().map(|v| v as f32).collect())
        }
        .map_err(|e| h5_err(src, item, path, e))?;
        Ok(Var { shape, data })
    }
}
