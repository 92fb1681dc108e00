//! Constant tensors of a graph (initializers and `Constant` nodes) and their decoding to f32.
//! Every element count is a checked product of the dims, compared with the bytes or values
//! actually present before anything is allocated, so a hostile dims list is an error.

use std::collections::HashMap;

use super::proto::{GraphProto, TensorProto, attribute_type, data_type};
use crate::Source;
use wgrnn_core::Result;

/// The graph's constants by value name: initializers, then the `value` of `Constant` nodes.
pub(crate) struct Constants<'g> {
    by_name: HashMap<&'g str, &'g TensorProto>,
}

impl<'g> Constants<'g> {
    pub(crate) fn new(graph: &'g GraphProto) -> Self {
        let mut by_name = HashMap::new();
        for t in &graph.initializer {
            by_name.insert(t.name.as_deref().unwrap_or(""), t);
        }
        // "" names an absent input: no unnamed constant answers for it.
        by_name.remove("");
        for node in &graph.node {
            if node.op_type.as_deref() != Some("Constant") {
                continue;
            }
            let value = node.attribute.iter().find(|a| {
                a.name.as_deref() == Some("value")
                    && a.r#type.is_none_or(|t| t == attribute_type::TENSOR)
            });
            if let (Some(out), Some(t)) = (node.output.first(), value.and_then(|a| a.t.as_ref())) {
                by_name.insert(out.as_str(), t);
            }
        }
        Self { by_name }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&'g TensorProto> {
        if name.is_empty() {
            return None;
        }
        self.by_name.get(name).copied()
    }
}

/// A decoded float tensor: its dims and row-major elements.
#[derive(Debug)]
pub(crate) struct Floats {
    pub dims: Vec<usize>,
    pub data: Vec<f32>,
}

/// The dims of `t` as sizes, and their product, checked.
fn dims_of(src: &Source, item: &str, field: &str, t: &TensorProto) -> Result<(Vec<usize>, usize)> {
    let dims: Option<Vec<usize>> = t.dims.iter().map(|&d| usize::try_from(d).ok()).collect();
    let dims =
        dims.ok_or_else(|| src.err(item, field, format!("has negative dims {:?}", t.dims)))?;
    let numel = wgrnn_core::tensor::checked_numel(&dims).ok_or_else(|| {
        src.err(
            item,
            field,
            format!("has dims {dims:?}, more elements than usize counts"),
        )
    })?;
    Ok((dims, numel))
}

/// Refuses data kept outside the file: the importer reads one file and nothing beside it.
fn check_internal(src: &Source, item: &str, field: &str, t: &TensorProto) -> Result<()> {
    if t.data_location == Some(1) || !t.external_data.is_empty() {
        let location = t
            .external_data
            .iter()
            .find(|e| e.key.as_deref() == Some("location"))
            .and_then(|e| e.value.clone())
            .unwrap_or_default();
        return Err(src.err(
            item,
            field,
            format!(
                "keeps its data in an external file (`{location}`); only weights stored inside \
                 the .onnx file are read (save with `save_as_external_data=False`)"
            ),
        ));
    }
    Ok(())
}

/// `raw_data` as `numel` elements of `size` bytes each, or an error saying what is there.
fn raw<'t>(
    src: &Source,
    item: &str,
    field: &str,
    t: &'t TensorProto,
    numel: usize,
    size: usize,
) -> Result<Option<&'t [u8]>> {
    let Some(raw) = t.raw_data.as_deref() else {
        return Ok(None);
    };
    let want = numel.checked_mul(size);
    if want != Some(raw.len()) {
        return Err(src.err(
            item,
            field,
            format!(
                "has dims {:?} of {} ({} bytes each) but {} bytes of raw_data",
                t.dims,
                data_type::name(t.data_type.unwrap_or(0)),
                size,
                raw.len()
            ),
        ));
    }
    Ok(Some(raw))
}

/// A typed field (`float_data`, …) must hold exactly the tensor's element count.
fn check_count(
    src: &Source,
    item: &str,
    field: &str,
    t: &TensorProto,
    what: &str,
    len: usize,
    numel: usize,
) -> Result<()> {
    if len != numel {
        return Err(src.err(
            item,
            field,
            format!(
                "has dims {:?} ({numel} elements) but {len} values in {what}",
                t.dims
            ),
        ));
    }
    Ok(())
}

/// Decodes a FLOAT, DOUBLE, FLOAT16 or BFLOAT16 tensor to f32, from `raw_data` or the typed
/// field its data type uses.
pub(crate) fn floats(src: &Source, item: &str, field: &str, t: &TensorProto) -> Result<Floats> {
    check_internal(src, item, field, t)?;
    let (dims, n) = dims_of(src, item, field, t)?;
    let dt = t.data_type.unwrap_or(0);
    let half = |bits: u16| {
        if dt == data_type::FLOAT16 {
            half::f16::from_bits(bits).to_f32()
        } else {
            half::bf16::from_bits(bits).to_f32()
        }
    };
    // Each decode is taken from the file's budget once its data is known to be present.
    let spend = || src.spend(item, field, n.saturating_mul(4));
    let data: Vec<f32> = match dt {
        data_type::FLOAT => match raw(src, item, field, t, n, 4)? {
            Some(b) => spend()
                .map(|()| b)?
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            None => {
                check_count(src, item, field, t, "float_data", t.float_data.len(), n)?;
                spend()?;
                t.float_data.clone()
            }
        },
        data_type::DOUBLE => match raw(src, item, field, t, n, 8)? {
            Some(b) => spend()
                .map(|()| b)?
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
                .collect(),
            None => {
                check_count(src, item, field, t, "double_data", t.double_data.len(), n)?;
                spend()?;
                t.double_data.iter().map(|&v| v as f32).collect()
            }
        },
        data_type::FLOAT16 | data_type::BFLOAT16 => match raw(src, item, field, t, n, 2)? {
            Some(b) => spend()
                .map(|()| b)?
                .chunks_exact(2)
                .map(|c| half(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            None => {
                check_count(src, item, field, t, "int32_data", t.int32_data.len(), n)?;
                spend()?;
                // The spec keeps each 16-bit pattern in the low half of an int32.
                t.int32_data.iter().map(|&v| half(v as u16)).collect()
            }
        },
        other => {
            return Err(src.err(
                item,
                field,
                format!(
                    "has data type {}, expected FLOAT, DOUBLE, FLOAT16 or BFLOAT16",
                    data_type::name(other)
                ),
            ));
        }
    };
    Ok(Floats { dims, data })
}

/// Decodes an INT64 or INT32 tensor (a shape or an axes list) to i64.
pub(crate) fn ints(src: &Source, item: &str, field: &str, t: &TensorProto) -> Result<Vec<i64>> {
    check_internal(src, item, field, t)?;
    let (_, n) = dims_of(src, item, field, t)?;
    if n > 64 {
        // Shapes and axes lists are short; nothing wgrnn reads needs a longer one.
        return Err(src.err(
            item,
            field,
            format!("has {n} elements, expected a short list"),
        ));
    }
    match t.data_type.unwrap_or(0) {
        data_type::INT64 => match raw(src, item, field, t, n, 8)? {
            Some(b) => Ok(b
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect()),
            None => {
                check_count(src, item, field, t, "int64_data", t.int64_data.len(), n)?;
                Ok(t.int64_data.clone())
            }
        },
        data_type::INT32 => match raw(src, item, field, t, n, 4)? {
            Some(b) => Ok(b
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                .collect()),
            None => {
                check_count(src, item, field, t, "int32_data", t.int32_data.len(), n)?;
                Ok(t.int32_data.iter().map(|&v| v as i64).collect())
            }
        },
        other => Err(src.err(
            item,
            field,
            format!(
                "has data type {}, expected INT64 or INT32",
                data_type::name(other)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src() -> Source {
        Source::new("onnx::read", "t.onnx")
    }

    fn proto(data_type: i32, dims: Vec<i64>) -> TensorProto {
        TensorProto {
            dims,
            data_type: Some(data_type),
            ..Default::default()
        }
    }

    /// Each float type decodes from raw_data and from its typed field to the same values.
    #[test]
    fn every_float_type_decodes_from_raw_and_typed_fields() {
        let want = [1.5f32, -2.0];
        let cases: Vec<(i32, Vec<u8>, TensorProto)> = vec![
            (
                data_type::DOUBLE,
                want.iter()
                    .flat_map(|&v| (v as f64).to_le_bytes())
                    .collect(),
                TensorProto {
                    double_data: vec![1.5, -2.0],
                    ..proto(data_type::DOUBLE, vec![2])
                },
            ),
            (
                data_type::FLOAT16,
                want.iter()
                    .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                    .collect(),
                TensorProto {
                    int32_data: want
                        .iter()
                        .map(|&v| half::f16::from_f32(v).to_bits() as i32)
                        .collect(),
                    ..proto(data_type::FLOAT16, vec![2])
                },
            ),
            (
                data_type::BFLOAT16,
                want.iter()
                    .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
                    .collect(),
                TensorProto {
                    int32_data: want
                        .iter()
                        .map(|&v| half::bf16::from_f32(v).to_bits() as i32)
                        .collect(),
                    ..proto(data_type::BFLOAT16, vec![2])
                },
            ),
        ];
        for (dt, raw, typed) in cases {
            let raw = TensorProto {
                raw_data: Some(raw),
                ..proto(dt, vec![2])
            };
            for t in [raw, typed] {
                let f = floats(&src(), "n", "W", &t).unwrap();
                assert_eq!(
                    (f.dims.as_slice(), f.data.as_slice()),
                    (&[2][..], &want[..]),
                    "{}",
                    data_type::name(dt)
                );
            }
        }
    }

    /// A typed field with another count than the dims, and negative dims, are refused.
    #[test]
    fn counts_and_dims_that_disagree_are_refused() {
        let short = TensorProto {
            float_data: vec![1.0],
            ..proto(data_type::FLOAT, vec![2])
        };
        let e = floats(&src(), "n", "W", &short).unwrap_err().to_string();
        assert!(e.contains("1 values in float_data"), "{e}");
        let negative = TensorProto {
            float_data: vec![1.0],
            ..proto(data_type::FLOAT, vec![-1])
        };
        let e = floats(&src(), "n", "W", &negative).unwrap_err().to_string();
        assert!(e.contains("negative dims"), "{e}");
        let ints_short = TensorProto {
            int64_data: vec![1],
            ..proto(data_type::INT64, vec![3])
        };
        assert!(ints(&src(), "n", "axes", &ints_short).is_err());
        let floats_as_ints = proto(data_type::FLOAT, vec![0]);
        let e = ints(&src(), "n", "axes", &floats_as_ints)
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected INT64 or INT32"), "{e}");
        let i32s = TensorProto {
            raw_data: Some(vec![1, 0, 0, 0]),
            ..proto(data_type::INT32, vec![1])
        };
        assert_eq!(ints(&src(), "n", "axes", &i32s).unwrap(), [1]);
    }
}
