//! safetensors reading and writing. Files written here load in PyTorch with
//! `safetensors.torch.load_file`, and files PyTorch writes with `save_file` load here.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::error::{Error, Result};
use crate::real::Real;
use crate::tensor::{Tensor, TensorMap, try_with_capacity};

const OP_READ: &str = "safetensors read";

/// How a weight set is picked out of a file or map, with PyTorch's `load_state_dict` rules.
/// The default is strict, as PyTorch's is: every parameter must be there and nothing else
/// under the prefix may be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadOptions {
    /// Prepended to every parameter name: `"encoder.rnn."` finds `encoder.rnn.weight_ih_l0` in the
    /// `state_dict` of a whole model. Tensors outside the prefix are always ignored.
    pub prefix: String,
    /// PyTorch's `strict`: `true` refuses a tensor missing from, or not named by, the config
    /// (under `prefix`); `false` loads what matches, reports the rest in a [`LoadReport`], and
    /// keeps the initial values of what is missing (`Weights::load_state_dict`). A tensor of
    /// the wrong shape is an error either way, as in PyTorch.
    pub strict: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self::strict()
    }
}

impl LoadOptions {
    /// Exactly the config's tensors, no prefix: what `save` writes (the default).
    pub fn strict() -> Self {
        Self {
            prefix: String::new(),
            strict: true,
        }
    }

    /// PyTorch's `strict=False`, no prefix: what matches loads, the rest is reported.
    pub fn non_strict() -> Self {
        Self {
            prefix: String::new(),
            strict: false,
        }
    }

    /// Exactly the config's tensors under `prefix`, strict; anything outside it is ignored.
    pub fn with_prefix(prefix: impl Into<String>) -> Self {
        Self::strict().prefix(prefix)
    }

    /// The same options under another prefix: `LoadOptions::non_strict().prefix("enc.")`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

/// What a non-strict load did not match, as PyTorch's `load_state_dict` returns it
/// (`_IncompatibleKeys`): full names, prefix included. `missing_keys` are the config's
/// parameters the source lacked, in `state_dict` order (they keep their values);
/// `unexpected_keys` the source's tensors under the prefix that the config does not name,
/// sorted (they were not read).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    pub missing_keys: Vec<String>,
    pub unexpected_keys: Vec<String>,
}

impl LoadReport {
    /// Whether every parameter loaded and nothing was left over: what strict loading demands.
    pub fn is_exact(&self) -> bool {
        self.missing_keys.is_empty() && self.unexpected_keys.is_empty()
    }
}

/// One tensor as stored: dtype, shape and little-endian bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredTensor {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

fn chunks<const N: usize>(bytes: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
    // safetensors data need not be aligned, so elements are copied out, never cast in place.
    bytes.chunks_exact(N).map(|c| {
        let mut a = [0u8; N];
        a.copy_from_slice(c);
        a
    })
}

impl StoredTensor {
    /// Checks that the bytes hold exactly the shape's elements of `size` bytes each (the fields
    /// are public, so a hand-built tensor may disagree).
    fn check_bytes(&self, name: &str, size: usize) -> Result<()> {
        let want = crate::tensor::checked_numel(&self.shape).and_then(|n| n.checked_mul(size));
        if want != Some(self.bytes.len()) {
            return Err(Error::Safetensors(format!(
                "tensor `{name}`: {:?} of shape {:?} needs {} bytes, has {}",
                self.dtype,
                self.shape,
                want.map_or("more than usize::MAX".into(), |n| n.to_string()),
                self.bytes.len()
            )));
        }
        Ok(())
    }

    /// Reads a float tensor (f16, bf16, f32 or f64 on disk) as `T`.
    pub fn to_real<T: Real>(&self, name: &str) -> Result<Tensor<T>> {
        let Some(size) = float_size(self.dtype) else {
            return Err(Error::Dtype {
                name: name.into(),
                expected: "a float type (F16, BF16, F32, F64)",
                got: format!("{:?}", self.dtype),
            });
        };
        self.check_bytes(name, size)?;
        // f16 on disk doubles in f32 and quadruples in f64: reserved fallibly, by name.
        let mut data: Vec<T> = try_with_capacity(OP_READ, name, self.bytes.len() / size)?;
        let b = &self.bytes;
        match self.dtype {
            Dtype::F32 => {
                data.extend(chunks::<4>(b).map(|c| T::from_f64(f32::from_le_bytes(c) as f64)))
            }
            Dtype::F64 => data.extend(chunks::<8>(b).map(|c| T::from_f64(f64::from_le_bytes(c)))),
            Dtype::F16 => data
                .extend(chunks::<2>(b).map(|c| T::from_f64(half::f16::from_le_bytes(c).to_f64()))),
            // BF16, the one float dtype left.
            _ => data
                .extend(chunks::<2>(b).map(|c| T::from_f64(half::bf16::from_le_bytes(c).to_f64()))),
        }
        Tensor::new(self.shape.clone(), data)
    }

    /// Reads an integer tensor (i32, i64, u32 or u8 on disk) as i64, for token ids and lengths.
    pub fn to_ids(&self, name: &str) -> Result<Tensor<i64>> {
        let Some(size) = int_size(self.dtype) else {
            return Err(Error::Dtype {
                name: name.into(),
                expected: "an integer type (I64, I32, U32, U8)",
                got: format!("{:?}", self.dtype),
            });
        };
        self.check_bytes(name, size)?;
        // u8 on disk grows eightfold as i64: reserved fallibly, by name.
        let mut data: Vec<i64> = try_with_capacity(OP_READ, name, self.bytes.len() / size)?;
        let b = &self.bytes;
        match self.dtype {
            Dtype::I64 => data.extend(chunks::<8>(b).map(i64::from_le_bytes)),
            Dtype::I32 => data.extend(chunks::<4>(b).map(|c| i32::from_le_bytes(c) as i64)),
            Dtype::U32 => data.extend(chunks::<4>(b).map(|c| u32::from_le_bytes(c) as i64)),
            // U8, the one integer dtype left.
            _ => data.extend(b.iter().map(|&c| c as i64)),
        }
        Tensor::new(self.shape.clone(), data)
    }

    /// Stores `t` as f32 or f64 (`T`'s own type), little-endian whatever the host's order.
    pub fn from_real<T: Real>(t: &Tensor<T>) -> Self {
        let bytes = match T::DTYPE {
            Dtype::F32 => t
                .data()
                .iter()
                .flat_map(|v| (v.as_f64() as f32).to_le_bytes())
                .collect(),
            _ => t
                .data()
                .iter()
                .flat_map(|v| v.as_f64().to_le_bytes())
                .collect(),
        };
        Self {
            dtype: T::DTYPE,
            shape: t.shape().to_vec(),
            bytes,
        }
    }

    pub fn from_ids(t: &Tensor<i64>) -> Self {
        Self {
            dtype: Dtype::I64,
            shape: t.shape().to_vec(),
            bytes: t.data().iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }
}

/// A whole safetensors file: its tensors and its header metadata.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SafetensorsFile {
    pub tensors: BTreeMap<String, StoredTensor>,
    pub metadata: BTreeMap<String, String>,
}

fn st_err(e: safetensors::SafeTensorError) -> Error {
    Error::Safetensors(e.to_string())
}

/// Bytes per element of the float dtypes `to_real` reads.
fn float_size(dtype: Dtype) -> Option<usize> {
    match dtype {
        Dtype::F16 | Dtype::BF16 => Some(2),
        Dtype::F32 => Some(4),
        Dtype::F64 => Some(8),
        _ => None,
    }
}

/// Bytes per element of the integer dtypes `to_ids` reads.
fn int_size(dtype: Dtype) -> Option<usize> {
    match dtype {
        Dtype::U8 => Some(1),
        Dtype::I32 | Dtype::U32 => Some(4),
        Dtype::I64 => Some(8),
        _ => None,
    }
}

/// The entry names of a safetensors header, refusing one that appears twice.
struct HeaderNames;

impl<'de> Deserialize<'de> for HeaderNames {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Names;
        impl<'de> Visitor<'de> for Names {
            type Value = HeaderNames;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a safetensors header (a JSON object)")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<HeaderNames, A::Error> {
                let mut seen = HashSet::new();
                while let Some(name) = map.next_key::<String>()? {
                    map.next_value::<IgnoredAny>()?;
                    if !seen.insert(name.clone()) {
                        return Err(de::Error::custom(format!(
                            "`{name}` appears twice in the header"
                        )));
                    }
                }
                Ok(HeaderNames)
            }
        }
        d.deserialize_map(Names)
    }
}

/// The header's JSON text, if the file is long enough to hold the length it declares.
fn header_text(bytes: &[u8]) -> Option<&[u8]> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    bytes.get(8..8usize.checked_add(usize::try_from(n).ok()?)?)
}

/// For a header the parser refused as inconsistent: the first tensor whose dtype, shape and
/// data offsets disagree with each other or with the data's length, said in full.
fn describe_invalid(bytes: &[u8]) -> Option<String> {
    let text = header_text(bytes)?;
    let data_len = bytes.len() - 8 - text.len();
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(text).ok()?;
    for (name, entry) in header.iter().filter(|(n, _)| *n != "__metadata__") {
        let dtype = entry.get("dtype")?.as_str()?;
        let size = match dtype {
            "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" => 1,
            "F16" | "BF16" | "I16" | "U16" => 2,
            "F32" | "I32" | "U32" => 4,
            "F64" | "I64" | "U64" => 8,
            // Rarer dtypes (sub-byte floats, complex) are left to the parser's own message.
            _ => continue,
        };
        let shape: Option<Vec<usize>> = entry
            .get("shape")?
            .as_array()?
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect();
        let offsets: Option<Vec<usize>> = entry
            .get("data_offsets")?
            .as_array()?
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect();
        let (Some(shape), Some(offsets)) = (shape, offsets) else {
            return Some(format!("tensor `{name}`: shape or data_offsets not counts"));
        };
        let &[begin, end] = offsets.as_slice() else {
            return Some(format!(
                "tensor `{name}`: data_offsets {offsets:?} are not [begin, end]"
            ));
        };
        let need = crate::tensor::checked_numel(&shape).and_then(|n| n.checked_mul(size));
        if end < begin || end > data_len || need != Some(end - begin) {
            return Some(format!(
                "tensor `{name}`: {dtype} of shape {shape:?} needs {} bytes, its data_offsets \
                 [{begin}, {end}] span {} of the {data_len} bytes of data",
                need.map_or("more than usize::MAX".into(), |n| n.to_string()),
                end.saturating_sub(begin)
            ));
        }
    }
    None
}

impl SafetensorsFile {
    /// Parses a whole file. A malformed one is an error that says what is wrong: a name given
    /// twice, or the tensor whose dtype, shape and offsets disagree.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| match describe_invalid(bytes) {
            Some(what) => Error::Safetensors(format!("{what} ({e})")),
            None => st_err(e),
        })?;
        if let Some(text) = header_text(bytes) {
            serde_json::from_slice::<HeaderNames>(text)
                .map_err(|e| Error::Safetensors(format!("header: {e}")))?;
        }
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(st_err)?;
        let tensors = st
            .iter()
            .map(|(name, view)| {
                let mut bytes = try_with_capacity(OP_READ, name, view.data().len())?;
                bytes.extend_from_slice(view.data());
                let stored = StoredTensor {
                    dtype: view.dtype(),
                    shape: view.shape().to_vec(),
                    bytes,
                };
                Ok((name.to_string(), stored))
            })
            .collect::<Result<_>>()?;
        let metadata = header
            .metadata()
            .as_ref()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        Ok(Self { tensors, metadata })
    }

    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::from_bytes(&bytes)
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        // The header keeps its metadata under this key: a tensor of that name would make a
        // file no reader accepts.
        if self.tensors.contains_key("__metadata__") {
            return Err(Error::Safetensors(
                "a tensor may not be named `__metadata__`, the header's metadata key".into(),
            ));
        }
        let views = self
            .tensors
            .iter()
            .map(|(name, t)| {
                TensorView::new(t.dtype, t.shape.clone(), &t.bytes)
                    .map(|v| (name.clone(), v))
                    .map_err(st_err)
            })
            .collect::<Result<Vec<_>>>()?;
        let meta = (!self.metadata.is_empty()).then(|| {
            self.metadata
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>()
        });
        safetensors::serialize(views, meta).map_err(st_err)
    }

    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.to_bytes()?).map_err(|e| Error::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    fn stored(&self, name: &str) -> Result<&StoredTensor> {
        self.tensors.get(name).ok_or_else(|| Error::MissingTensor {
            op: "safetensors",
            name: name.into(),
        })
    }

    /// The float tensor `name`, converted to `T`.
    pub fn real<T: Real>(&self, name: &str) -> Result<Tensor<T>> {
        self.stored(name)?.to_real(name)
    }

    /// The integer tensor `name`, as i64.
    pub fn ids(&self, name: &str) -> Result<Tensor<i64>> {
        self.stored(name)?.to_ids(name)
    }

    /// A metadata value of the header.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    /// Every float tensor of the file, as `T` (integer tensors are skipped).
    pub fn real_tensors<T: Real>(&self) -> Result<TensorMap<T>> {
        self.tensors
            .iter()
            .filter(|(_, t)| matches!(t.dtype, Dtype::F16 | Dtype::BF16 | Dtype::F32 | Dtype::F64))
            .map(|(name, t)| Ok((name.clone(), t.to_real(name)?)))
            .collect()
    }

    pub fn insert_real<T: Real>(&mut self, name: impl Into<String>, t: &Tensor<T>) {
        self.tensors.insert(name.into(), StoredTensor::from_real(t));
    }

    pub fn insert_ids(&mut self, name: impl Into<String>, t: &Tensor<i64>) {
        self.tensors.insert(name.into(), StoredTensor::from_ids(t));
    }
}
