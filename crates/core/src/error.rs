//! The one error type of wgrnn. Every variant names the operation and the argument at fault, and
//! shape errors carry both the expected and the actual shape, so a message alone is enough to fix
//! the call.

/// Result alias used throughout wgrnn.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Formats a shape the way PyTorch prints it: `[2, 3, 4]`.
pub fn fmt_shape(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

/// A shape's element count for messages; a count past `usize` is said as such.
fn fmt_numel(shape: &[usize]) -> String {
    match crate::tensor::checked_numel(shape) {
        Some(n) => n.to_string(),
        None => "more than usize::MAX".to_string(),
    }
}

/// The key lists of [`Error::IncompatibleKeys`]: "missing tensors `a`, `b`; unexpected tensor `c`".
fn fmt_keys(missing: &[String], unexpected: &[String]) -> String {
    let list = |what: &str, names: &[String]| {
        let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        let s = if names.len() == 1 { "" } else { "s" };
        format!("{what} tensor{s} {}", quoted.join(", "))
    };
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(list("missing", missing));
    }
    if !unexpected.is_empty() {
        parts.push(list("unexpected", unexpected));
    }
    parts.join("; ")
}

/// Every error of the crates. New kinds may be added: a `match` outside wgrnn needs a `_` arm.
/// The constructors below build the common kinds; [`Error::op`] says which operation failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// A configuration field is out of its domain (a zero size, an attention dimension missing…).
    #[error("invalid {config}: {field} {reason}")]
    InvalidConfig {
        config: &'static str,
        field: &'static str,
        reason: String,
    },

    /// An argument of an operation has the wrong shape.
    #[error(
        "{op}: argument `{arg}` has shape {}, expected {}",
        fmt_shape(got),
        fmt_shape(expected)
    )]
    Shape {
        op: &'static str,
        arg: String,
        expected: Vec<usize>,
        got: Vec<usize>,
    },

    /// A tensor was built from a buffer whose length does not match its shape.
    #[error(
        "tensor of shape {} needs {} elements, got {len}",
        fmt_shape(shape),
        fmt_numel(shape)
    )]
    DataLength { shape: Vec<usize>, len: usize },

    /// A sequence length is zero or longer than the sequence.
    #[error("{op}: `{arg}[{index}]` = {value} is outside 1..={max}")]
    Length {
        op: &'static str,
        arg: &'static str,
        index: usize,
        value: usize,
        max: usize,
    },

    /// A token id (or a class target) lies outside `0..limit`.
    #[error("{op}: `{arg}[{index}]` = {id} is outside 0..{limit}")]
    IdOutOfRange {
        op: &'static str,
        arg: &'static str,
        index: usize,
        id: i64,
        limit: usize,
    },

    /// An argument that the operation needs was not given, or one it cannot use was given.
    #[error("{op}: argument `{arg}` {reason}")]
    InvalidArgument {
        op: &'static str,
        arg: &'static str,
        reason: String,
    },

    /// A weight set lacks a tensor its config requires.
    #[error("{op}: missing tensor `{name}`")]
    MissingTensor { op: &'static str, name: String },

    /// A weight set has a tensor its config does not know (strict loading only).
    #[error("{op}: unexpected tensor `{name}`")]
    UnknownTensor { op: &'static str, name: String },

    /// A `state_dict` does not fit the config's parameter names, said as PyTorch's
    /// `load_state_dict` says it: what is missing first (in `state_dict` order), then what is
    /// unexpected (sorted); full names, prefix included. Either list may be empty.
    #[error("{op}: {}", fmt_keys(missing, unexpected))]
    IncompatibleKeys {
        op: &'static str,
        missing: Vec<String>,
        unexpected: Vec<String>,
    },

    /// A stored tensor has a dtype that cannot be read as the requested type.
    #[error("tensor `{name}` has dtype {got}, expected {expected}")]
    Dtype {
        name: String,
        expected: &'static str,
        got: String,
    },

    /// The safetensors data itself is malformed.
    #[error("safetensors: {0}")]
    Safetensors(String),

    /// No GPU adapter could be found or opened.
    #[error("no GPU adapter: {message}")]
    NoAdapter { message: String },

    /// The GPU device reported an error: validation, out of memory, or device loss.
    #[error("GPU device error in {op}: {message}")]
    Device { op: &'static str, message: String },

    /// A size would exceed what the device (or a u32 index) allows: a buffer's bytes, a
    /// dispatch's workgroups, an element count.
    #[error("{op}: `{arg}` needs {size} {unit}, over the limit {limit_name} = {limit}")]
    TooLarge {
        op: &'static str,
        arg: String,
        size: u64,
        /// What `size` counts: "bytes", "workgroups", "elements", …
        unit: &'static str,
        limit_name: &'static str,
        limit: u64,
    },

    /// One shader invocation would loop more often than the adapter runs a loop: CPU adapters
    /// (lavapipe) end longer loops early without an error, so the call is refused instead.
    #[error(
        "{op}: `{arg}` makes one invocation loop {trips} times, over this adapter's limit of \
         {limit} iterations (its compiler ends longer loops early)"
    )]
    LoopLimit {
        op: &'static str,
        arg: &'static str,
        trips: u64,
        limit: u64,
    },

    /// A device object (tensor, weights, ids, targets, tape, optimizer state) was given to a
    /// context other than the one that made it. Buffers of two devices cannot be mixed: the
    /// call is refused before anything is recorded.
    #[error(
        "{op}: `{arg}` ({what}) belongs to another context; device objects work only with the \
         context that made them"
    )]
    ForeignContext {
        op: &'static str,
        arg: String,
        what: String,
    },

    /// A tensor is in a recording (`Context::record`) that has not been submitted, and this
    /// use would see the recorded commands out of order: reading it back, or using it in other
    /// work, while the recording will write it; writing it while the recording will read it.
    /// Nothing of the refused call happened.
    #[error(
        "{op}: `{arg}` ({what}) {reason} a recording that is not submitted yet; submit that \
         recording first (or drop it)"
    )]
    Unsubmitted {
        op: &'static str,
        arg: String,
        what: String,
        /// "is written by" or "is read by".
        reason: &'static str,
    },

    /// The host could not allocate a buffer: a shape (or a count in a file) asks for more
    /// memory than the system grants. Refused instead of aborting the process.
    #[error("{op}: `{arg}` needs {bytes} bytes of host memory, more than could be allocated")]
    OutOfMemory {
        op: &'static str,
        arg: String,
        bytes: u64,
    },

    /// Reading or writing a file failed.
    #[error("{path}: {message}")]
    Io { path: String, message: String },

    /// A model file (ONNX, Keras) that cannot be imported: malformed, or holding something
    /// wgrnn does not compute. `op` is the reader (`onnx::read`, `keras::read`), `path` the
    /// file, `item` the node or layer at fault (or the part of the file), `field` its
    /// attribute, input, tensor or config key, and `reason` completes "`field` …".
    #[error("{op} {path}: {item}: `{field}` {reason}")]
    Import {
        op: &'static str,
        path: String,
        item: String,
        field: String,
        reason: String,
    },
}

impl Error {
    /// The operation that failed, named as the public function or method the caller called
    /// (the same name on the CPU and GPU backends: `rnn_forward`, `linear_backward`…); `None`
    /// for the kinds that belong to no operation (a file, a tensor's data, the adapter).
    pub fn op(&self) -> Option<&'static str> {
        match self {
            Error::Shape { op, .. }
            | Error::Length { op, .. }
            | Error::IdOutOfRange { op, .. }
            | Error::InvalidArgument { op, .. }
            | Error::MissingTensor { op, .. }
            | Error::UnknownTensor { op, .. }
            | Error::IncompatibleKeys { op, .. }
            | Error::Device { op, .. }
            | Error::TooLarge { op, .. }
            | Error::LoopLimit { op, .. }
            | Error::ForeignContext { op, .. }
            | Error::Unsubmitted { op, .. }
            | Error::OutOfMemory { op, .. }
            | Error::Import { op, .. } => Some(op),
            Error::InvalidConfig { .. }
            | Error::DataLength { .. }
            | Error::Dtype { .. }
            | Error::Safetensors(_)
            | Error::NoAdapter { .. }
            | Error::Io { .. } => None,
        }
    }

    /// An argument the operation cannot use: `reason` completes "argument `arg` …".
    pub fn invalid_argument(
        op: &'static str,
        arg: &'static str,
        reason: impl Into<String>,
    ) -> Self {
        Error::InvalidArgument {
            op,
            arg,
            reason: reason.into(),
        }
    }

    /// A configuration field out of its domain: `reason` completes "`field` …".
    pub fn invalid_config(
        config: &'static str,
        field: &'static str,
        reason: impl Into<String>,
    ) -> Self {
        Error::InvalidConfig {
            config,
            field,
            reason: reason.into(),
        }
    }

    /// A size over a limit: `arg` needs `size` `unit` (bytes, workgroups, elements…), over
    /// `limit_name` = `limit`.
    pub fn too_large(
        op: &'static str,
        arg: impl Into<String>,
        size: u64,
        unit: &'static str,
        limit_name: &'static str,
        limit: u64,
    ) -> Self {
        Error::TooLarge {
            op,
            arg: arg.into(),
            size,
            unit,
            limit_name,
            limit,
        }
    }

    /// An error the device reported during `op`.
    pub fn device(op: &'static str, message: impl Into<String>) -> Self {
        Error::Device {
            op,
            message: message.into(),
        }
    }

    /// The error for a device object of another context.
    pub fn foreign(op: &'static str, arg: impl Into<String>, what: impl Into<String>) -> Self {
        Error::ForeignContext {
            op,
            arg: arg.into(),
            what: what.into(),
        }
    }

    /// Shape error helper used by every op's argument checks.
    pub fn shape(
        op: &'static str,
        arg: impl Into<String>,
        expected: &[usize],
        got: &[usize],
    ) -> Self {
        Error::Shape {
            op,
            arg: arg.into(),
            expected: expected.to_vec(),
            got: got.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each constructor builds its kind, and `op` names the operation of every kind that has
    /// one.
    #[test]
    fn constructors_build_their_kinds_and_name_the_op() {
        let cases = [
            (
                Error::shape("rnn_forward", "x", &[2, 3], &[2, 4]),
                Some("rnn_forward"),
            ),
            (
                Error::invalid_argument("matmul", "b", "is empty"),
                Some("matmul"),
            ),
            (
                Error::too_large("concat", "out", 9, "bytes", "max_buffer_size", 8),
                Some("concat"),
            ),
            (Error::device("pipeline", "lost"), Some("pipeline")),
            (Error::foreign("axpby", "x", "tensor"), Some("axpby")),
            (
                Error::invalid_config("RnnConfig", "hidden_size", "must be > 0"),
                None,
            ),
            (
                Error::Import {
                    op: "onnx::read",
                    path: "m.onnx".into(),
                    item: "node `/rnn/LSTM` (LSTM)".into(),
                    field: "clip".into(),
                    reason: "is 3: cell clipping, which wgrnn does not compute".into(),
                },
                Some("onnx::read"),
            ),
        ];
        for (e, op) in &cases {
            assert_eq!(e.op(), *op, "{e}");
        }
        assert_eq!(
            cases[1].0.to_string(),
            "matmul: argument `b` is empty",
            "invalid_argument's message"
        );
        assert_eq!(
            cases[2].0.to_string(),
            "concat: `out` needs 9 bytes, over the limit max_buffer_size = 8"
        );
        assert_eq!(
            cases[6].0.to_string(),
            "onnx::read m.onnx: node `/rnn/LSTM` (LSTM): `clip` is 3: cell clipping, which wgrnn \
             does not compute"
        );
        assert!(matches!(
            cases[5].0,
            Error::InvalidConfig {
                field: "hidden_size",
                ..
            }
        ));
    }
}
