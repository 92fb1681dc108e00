//! Configurations of every op, and the parameter specs (PyTorch names, shapes, init) they imply.

use crate::error::{Error, Result};

/// The recurrent cell. Gate orders follow PyTorch: LSTM i,f,g,o; GRU r,z,n.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CellKind {
    Lstm,
    Gru,
    /// Elman RNN with tanh (PyTorch `nn.RNN(nonlinearity="tanh")`).
    RnnTanh,
    /// Elman RNN with relu (PyTorch `nn.RNN(nonlinearity="relu")`).
    RnnRelu,
}

impl CellKind {
    /// Gate blocks stacked in `weight_ih`/`weight_hh`: 4 (LSTM), 3 (GRU), 1 (Elman).
    pub fn gates(self) -> usize {
        match self {
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
            CellKind::RnnTanh | CellKind::RnnRelu => 1,
        }
    }

    /// Whether the cell carries a cell state `c` beside `h` (LSTM only).
    pub fn has_cell_state(self) -> bool {
        self == CellKind::Lstm
    }

    /// The name used in fixtures and file metadata.
    pub fn name(self) -> &'static str {
        match self {
            CellKind::Lstm => "lstm",
            CellKind::Gru => "gru",
            CellKind::RnnTanh => "rnn_tanh",
            CellKind::RnnRelu => "rnn_relu",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "lstm" => Some(CellKind::Lstm),
            "gru" => Some(CellKind::Gru),
            "rnn_tanh" => Some(CellKind::RnnTanh),
            "rnn_relu" => Some(CellKind::RnnRelu),
            _ => None,
        }
    }
}

/// How a parameter is initialised by `Weights::init`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// U(−bound, bound)
    Uniform(f64),
    /// N(0, std²)
    Normal(f64),
}

/// One parameter of an op: its PyTorch name, shape and initialisation.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub init: Init,
}

fn nonzero(config: &'static str, field: &'static str, v: usize) -> Result<()> {
    if v == 0 {
        return Err(Error::InvalidConfig {
            config,
            field,
            reason: "must be at least 1".into(),
        });
    }
    Ok(())
}

/// Checks packed-sequence `lengths` for `batch` sequences of `seq_len` steps: one per sequence,
/// each in `1..=seq_len` ([`Error::Length`] names the first that is not).
pub fn check_lengths(
    op: &'static str,
    lengths: &[usize],
    batch: usize,
    seq_len: usize,
) -> Result<()> {
    if lengths.len() != batch {
        return Err(Error::shape(op, "lengths", &[batch], &[lengths.len()]));
    }
    if let Some((index, &value)) = lengths
        .iter()
        .enumerate()
        .find(|(_, l)| **l == 0 || **l > seq_len)
    {
        return Err(Error::Length {
            op,
            arg: "lengths",
            index,
            value,
            max: seq_len,
        });
    }
    Ok(())
}

/// How `masked_pool` reduces each sequence's valid steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolMode {
    /// The mean over steps `0..len`.
    Mean,
    /// The maximum over steps `0..len`; its gradient goes to the first step holding it.
    Max,
}

/// The sizes of one masked pooling call over `x` `[T, B, F]` (or `[B, T, F]` with
/// `batch_first`), and where `x[t, b, f]` lies in its buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PoolDims {
    pub seq_len: usize,
    pub batch: usize,
    pub features: usize,
    pub batch_first: bool,
}

impl PoolDims {
    /// Checks `x`'s shape (rank 3, T, B, F ≥ 1) and `lengths` (B of them, each in `1..=T`)
    /// for `op`; `None` lengths are all T.
    pub fn check(
        op: &'static str,
        x: &[usize],
        lengths: Option<&[usize]>,
        batch_first: bool,
    ) -> Result<Self> {
        let want = if batch_first {
            "[B, T, F]"
        } else {
            "[T, B, F]"
        };
        let &[a, b, features] = x else {
            return Err(Error::InvalidArgument {
                op,
                arg: "x",
                reason: format!(
                    "must have rank 3 {want}, has shape {}",
                    crate::error::fmt_shape(x)
                ),
            });
        };
        let (seq_len, batch) = if batch_first { (b, a) } else { (a, b) };
        if seq_len == 0 || batch == 0 || features == 0 {
            return Err(Error::InvalidArgument {
                op,
                arg: "x",
                reason: format!(
                    "{want} needs T, B, F ≥ 1, has shape {}",
                    crate::error::fmt_shape(x)
                ),
            });
        }
        if let Some(lengths) = lengths {
            check_lengths(op, lengths, batch, seq_len)?;
        }
        Ok(Self {
            seq_len,
            batch,
            features,
            batch_first,
        })
    }

    /// The strides of t and b in `x`'s buffer (F is contiguous).
    pub fn strides(&self) -> (usize, usize) {
        let (t, b, f) = (self.seq_len, self.batch, self.features);
        if self.batch_first {
            (f, t * f)
        } else {
            (b * f, f)
        }
    }

    /// The pooled output's shape, `[B, F]`.
    pub fn output_shape(&self) -> [usize; 2] {
        [self.batch, self.features]
    }
}

/// Sequence length and batch size of one recurrent call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RnnDims {
    pub seq_len: usize,
    pub batch: usize,
}

/// Where a GRU applies its reset gate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum GruReset {
    /// PyTorch's form (ONNX `linear_before_reset=1`, Keras `reset_after=True`):
    /// n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)).
    #[default]
    After,
    /// The reset-before form (ONNX's default `linear_before_reset=0`, Keras
    /// `reset_after=False` with b_hn = 0): n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn).
    Before,
}

impl GruReset {
    /// The name used in fixtures and file metadata: `after`, `before`.
    pub fn name(self) -> &'static str {
        match self {
            GruReset::After => "after",
            GruReset::Before => "before",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "after" => Some(GruReset::After),
            "before" => Some(GruReset::Before),
            _ => None,
        }
    }
}

/// The batch-of-one shapes an unbatched recurrent call runs with (see
/// [`RnnConfig::unbatched_shapes`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnbatchedShapes {
    pub x: Vec<usize>,
    pub h0: Option<Vec<usize>>,
    pub c0: Option<Vec<usize>>,
}

/// A (possibly multi-layer, bidirectional) recurrent layer, as PyTorch's `nn.LSTM`/`nn.GRU`/`nn.RNN`.
#[derive(Clone, Debug, PartialEq)]
pub struct RnnConfig {
    pub cell: CellKind,
    pub input_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub bidirectional: bool,
    /// Whether `bias_ih`/`bias_hh` exist (PyTorch `bias=True`).
    pub bias: bool,
    /// Inputs and outputs are `[B, T, F]` instead of `[T, B, F]`; states stay `[L·D, B, H]`.
    pub batch_first: bool,
    /// LSTM only (PyTorch `proj_size`): 0, or P < H, in which case h = W_hr·(o ⊙ tanh c) has
    /// P features (`weight_hr_l{k}` `[P, H]`, `weight_hh` `[4H, P]`, outputs and h states of
    /// size P, c states of size H).
    pub proj_size: usize,
    /// GRU only: where the reset gate applies (PyTorch's form, `After`, by default).
    pub gru_reset: GruReset,
    /// Probability of zeroing each element of every layer's output but the last, in training
    /// calls only (PyTorch `dropout`); in [0, 1).
    pub dropout: f32,
}

impl RnnConfig {
    /// One layer, one direction, with biases, sequence-major: PyTorch's defaults.
    pub fn new(cell: CellKind, input_size: usize, hidden_size: usize) -> Self {
        Self {
            cell,
            input_size,
            hidden_size,
            num_layers: 1,
            bidirectional: false,
            bias: true,
            batch_first: false,
            proj_size: 0,
            gru_reset: GruReset::After,
            dropout: 0.0,
        }
    }

    /// PyTorch's `proj_size` (LSTM only, below `hidden_size`; 0 for none).
    pub fn proj_size(mut self, p: usize) -> Self {
        self.proj_size = p;
        self
    }

    /// The GRU's reset form.
    pub fn gru_reset(mut self, reset: GruReset) -> Self {
        self.gru_reset = reset;
        self
    }

    /// PyTorch's inter-layer `dropout`.
    pub fn dropout(mut self, p: f32) -> Self {
        self.dropout = p;
        self
    }

    pub fn layers(mut self, n: usize) -> Self {
        self.num_layers = n;
        self
    }

    pub fn bidirectional(mut self, yes: bool) -> Self {
        self.bidirectional = yes;
        self
    }

    pub fn bias(mut self, yes: bool) -> Self {
        self.bias = yes;
        self
    }

    pub fn batch_first(mut self, yes: bool) -> Self {
        self.batch_first = yes;
        self
    }

    pub fn validate(&self) -> Result<()> {
        nonzero("RnnConfig", "input_size", self.input_size)?;
        nonzero("RnnConfig", "hidden_size", self.hidden_size)?;
        nonzero("RnnConfig", "num_layers", self.num_layers)?;
        self.validate_variants()?;
        // Every size derived from the config (G·H, D·H, each weight's element count, the total
        // parameter count) must be countable, or the products behind shapes would wrap around.
        // The field named is the first whose size makes a count overflow.
        let (h, d) = (self.hidden_size, self.num_directions());
        let out = self.state_size();
        let biases = if self.bias { 2 } else { 0 };
        let per_dir = |gh: usize, input: usize| {
            gh.checked_mul(input.checked_add(out)?.checked_add(biases)?)?
                .checked_add(self.proj_size.checked_mul(h)?)?
                .checked_mul(d)
        };
        let gh = self.cell.gates().checked_mul(h);
        let upper = gh.and_then(|gh| per_dir(gh, d.checked_mul(out)?));
        let first = gh.and_then(|gh| per_dir(gh, self.input_size));
        let total = first
            .zip(upper)
            .and_then(|(f, u)| f.checked_add(u.checked_mul(self.num_layers - 1)?));
        let field = if upper.is_none() {
            "hidden_size"
        } else if first.is_none() {
            "input_size"
        } else if total.is_none() {
            "num_layers"
        } else {
            return Ok(());
        };
        Err(Error::InvalidConfig {
            config: "RnnConfig",
            field,
            reason: format!(
                "makes more parameters than usize counts (input_size {}, hidden_size {h}, {} \
                 layers, {d} direction(s))",
                self.input_size, self.num_layers
            ),
        })
    }

    /// The options PyTorch refuses as it does: a projection outside LSTM or not below
    /// `hidden_size`, a dropout outside [0, 1); and the GRU's reset form on another cell.
    fn validate_variants(&self) -> Result<()> {
        let refuse = |field, reason: String| {
            Err(Error::InvalidConfig {
                config: "RnnConfig",
                field,
                reason,
            })
        };
        if self.proj_size > 0 && self.cell != CellKind::Lstm {
            return refuse(
                "proj_size",
                format!(
                    "is only supported for LSTM, the cell is {} (proj_size {})",
                    self.cell.name(),
                    self.proj_size
                ),
            );
        }
        if self.proj_size >= self.hidden_size && self.proj_size > 0 {
            return refuse(
                "proj_size",
                format!(
                    "{} must be smaller than hidden_size ({})",
                    self.proj_size, self.hidden_size
                ),
            );
        }
        if self.gru_reset != GruReset::After && self.cell != CellKind::Gru {
            return refuse(
                "gru_reset",
                format!(
                    "`{}` is only for GRU, the cell is {}",
                    self.gru_reset.name(),
                    self.cell.name()
                ),
            );
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return refuse("dropout", format!("{} must be in [0, 1)", self.dropout));
        }
        Ok(())
    }

    /// Size of the h state and of each direction's output: `proj_size` where the LSTM has a
    /// projection, else `hidden_size`.
    pub fn state_size(&self) -> usize {
        if self.proj_size > 0 {
            self.proj_size
        } else {
            self.hidden_size
        }
    }

    pub fn num_directions(&self) -> usize {
        if self.bidirectional { 2 } else { 1 }
    }

    /// Width of layer `layer`'s input: `input_size` for layer 0, `D·H` (`D·P` with a
    /// projection) above it.
    pub fn layer_input_size(&self, layer: usize) -> usize {
        if layer == 0 {
            self.input_size
        } else {
            self.output_size()
        }
    }

    /// Width of the output `y`: `D·H` (`D·P` with a projection).
    pub fn output_size(&self) -> usize {
        self.num_directions() * self.state_size()
    }

    /// Suffix of a (layer, direction) pair in PyTorch names: `_l1`, `_l1_reverse`.
    pub fn suffix(layer: usize, direction: usize) -> String {
        if direction == 0 {
            format!("_l{layer}")
        } else {
            format!("_l{layer}_reverse")
        }
    }

    /// Checks the shapes of a call's inputs and returns its sequence length and batch size.
    /// `x` is `[T, B, input_size]` (`[B, T, input_size]` when `batch_first`), `h0`/`c0` are
    /// `[L·D, B, H]` (`c0` only for LSTM), `lengths` has B entries, each in `1..=T`.
    pub fn check_inputs(
        &self,
        op: &'static str,
        x: &[usize],
        h0: Option<&[usize]>,
        c0: Option<&[usize]>,
        lengths: Option<&[usize]>,
    ) -> Result<RnnDims> {
        self.validate()?;
        let &[a, b, f] = x else {
            let want = if self.batch_first {
                "[B, T, input_size]"
            } else {
                "[T, B, input_size]"
            };
            return Err(Error::InvalidArgument {
                op,
                arg: "x",
                reason: format!(
                    "must have rank 3 {want} (or 2, unbatched [T, input_size]), has shape {}",
                    crate::error::fmt_shape(x)
                ),
            });
        };
        let (seq_len, batch) = if self.batch_first { (b, a) } else { (a, b) };
        if seq_len == 0 || batch == 0 {
            return Err(Error::InvalidArgument {
                op,
                arg: "x",
                reason: format!(
                    "needs T ≥ 1 and B ≥ 1, has shape {}",
                    crate::error::fmt_shape(x)
                ),
            });
        }
        if f != self.input_size {
            let mut want = x.to_vec();
            want[2] = self.input_size;
            return Err(Error::shape(op, "x", &want, x));
        }
        let state = self.state_shape(batch);
        if let Some(h0) = h0 {
            if h0 != state {
                return Err(Error::shape(op, "h0", &state, h0));
            }
        }
        let state = self.cell_state_shape(batch);
        if let Some(c0) = c0 {
            if !self.cell.has_cell_state() {
                return Err(Error::InvalidArgument {
                    op,
                    arg: "c0",
                    reason: format!("is only for LSTM, the cell is {}", self.cell.name()),
                });
            }
            if c0 != state {
                return Err(Error::shape(op, "c0", &state, c0));
            }
        }
        if let Some(lengths) = lengths {
            check_lengths(op, lengths, batch, seq_len)?;
        }
        Ok(RnnDims { seq_len, batch })
    }

    /// PyTorch's unbatched call: `x` `[T, input_size]` with states `[L·D, H]`, which runs as a
    /// batch of one. Returns the batch-of-one shapes of `x` and of the given states (`None`
    /// for a batched `x`); a state of another rank than 2 beside an unbatched `x` is an error
    /// naming it, as PyTorch refuses it.
    pub fn unbatched_shapes(
        &self,
        op: &'static str,
        x: &[usize],
        states: [(&'static str, Option<&[usize]>); 2],
    ) -> Result<Option<UnbatchedShapes>> {
        let &[t, f] = x else { return Ok(None) };
        let given = x;
        let x = if self.batch_first {
            vec![1, t, f]
        } else {
            vec![t, 1, f]
        };
        let mut batched = [None, None];
        for (slot, (arg, shape)) in batched.iter_mut().zip(states) {
            let Some(shape) = shape else { continue };
            let &[ld, h] = shape else {
                return Err(Error::InvalidArgument {
                    op,
                    arg,
                    reason: format!(
                        "must be 2-D [L·D, H] beside an unbatched 2-D x {}, has shape {}",
                        crate::error::fmt_shape(given),
                        crate::error::fmt_shape(shape)
                    ),
                });
            };
            *slot = Some(vec![ld, 1, h]);
        }
        let [h0, c0] = batched;
        Ok(Some(UnbatchedShapes { x, h0, c0 }))
    }

    /// Shape of `y` for a call of `dims`: `[T, B, D·H]`, or `[B, T, D·H]` when `batch_first`.
    pub fn output_shape(&self, dims: RnnDims) -> Vec<usize> {
        if self.batch_first {
            vec![dims.batch, dims.seq_len, self.output_size()]
        } else {
            vec![dims.seq_len, dims.batch, self.output_size()]
        }
    }

    /// Shape of `h0` and `h_n`: `[L·D, B, H]` (`[L·D, B, P]` with a projection).
    pub fn state_shape(&self, batch: usize) -> Vec<usize> {
        vec![
            self.num_layers * self.num_directions(),
            batch,
            self.state_size(),
        ]
    }

    /// Shape of `c0` and `c_n` (LSTM): `[L·D, B, H]`, with a projection too.
    pub fn cell_state_shape(&self, batch: usize) -> Vec<usize> {
        vec![
            self.num_layers * self.num_directions(),
            batch,
            self.hidden_size,
        ]
    }

    /// Parameters in PyTorch's `state_dict` order (per layer and direction `weight_ih`,
    /// `weight_hh`, `bias_ih`, `bias_hh`, `weight_hr`), initialised U(−1/√H, 1/√H) as PyTorch
    /// does.
    pub fn param_specs(&self) -> Vec<ParamSpec> {
        let gh = self.cell.gates() * self.hidden_size;
        let bound = 1.0 / (self.hidden_size as f64).sqrt();
        let mut specs = Vec::new();
        for layer in 0..self.num_layers {
            for dir in 0..self.num_directions() {
                let sfx = Self::suffix(layer, dir);
                let mut push = |name: &str, shape: Vec<usize>| {
                    specs.push(ParamSpec {
                        name: format!("{name}{sfx}"),
                        shape,
                        init: Init::Uniform(bound),
                    })
                };
                push("weight_ih", vec![gh, self.layer_input_size(layer)]);
                push("weight_hh", vec![gh, self.state_size()]);
                if self.bias {
                    push("bias_ih", vec![gh]);
                    push("bias_hh", vec![gh]);
                }
                if self.proj_size > 0 {
                    push("weight_hr", vec![self.proj_size, self.hidden_size]);
                }
            }
        }
        specs
    }
}

/// Attention score functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Score {
    /// Luong dot: qᵀk.
    Dot,
    /// Scaled dot: qᵀk / √d (d = key size).
    ScaledDot,
    /// Luong general: qᵀ·W·k with `weight` [Dq, Dk].
    General,
    /// Bahdanau additive: vᵀ·tanh(W_q q + W_k k) with `w_query` `[A, Dq]`, `w_key` `[A, Dk]`, `v` `[A]`.
    Additive,
}

impl Score {
    pub fn name(self) -> &'static str {
        match self {
            Score::Dot => "dot",
            Score::ScaledDot => "scaled_dot",
            Score::General => "general",
            Score::Additive => "additive",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "dot" => Some(Score::Dot),
            "scaled_dot" => Some(Score::ScaledDot),
            "general" => Some(Score::General),
            "additive" => Some(Score::Additive),
            _ => None,
        }
    }
}

/// Attention over keys/values `[B, Tk, ·]` for queries `[B, Tq, Dq]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AttentionConfig {
    pub score: Score,
    pub query_size: usize,
    pub key_size: usize,
    pub value_size: usize,
    /// Width of the additive score's hidden layer (A); ignored by the other scores.
    pub attn_size: usize,
}

impl AttentionConfig {
    /// Query, key and value all of width `d`; for additive attention A = d.
    pub fn new(score: Score, d: usize) -> Self {
        Self {
            score,
            query_size: d,
            key_size: d,
            value_size: d,
            attn_size: d,
        }
    }

    pub fn validate(&self) -> Result<()> {
        nonzero("AttentionConfig", "query_size", self.query_size)?;
        nonzero("AttentionConfig", "key_size", self.key_size)?;
        nonzero("AttentionConfig", "value_size", self.value_size)?;
        match self.score {
            Score::Dot | Score::ScaledDot if self.query_size != self.key_size => {
                Err(Error::InvalidConfig {
                    config: "AttentionConfig",
                    field: "key_size",
                    reason: format!(
                        "must equal query_size ({}) for {} scores, is {}",
                        self.query_size,
                        self.score.name(),
                        self.key_size
                    ),
                })
            }
            Score::Additive => nonzero("AttentionConfig", "attn_size", self.attn_size),
            _ => Ok(()),
        }
    }

    /// `weight` for general; `w_query`, `w_key`, `v` for additive (the names Keras fixtures use).
    pub fn param_specs(&self) -> Vec<ParamSpec> {
        let uni = |fan_in: usize| Init::Uniform(1.0 / (fan_in as f64).sqrt());
        match self.score {
            Score::Dot | Score::ScaledDot => vec![],
            Score::General => vec![ParamSpec {
                name: "weight".into(),
                shape: vec![self.query_size, self.key_size],
                init: uni(self.key_size),
            }],
            Score::Additive => vec![
                ParamSpec {
                    name: "w_query".into(),
                    shape: vec![self.attn_size, self.query_size],
                    init: uni(self.query_size),
                },
                ParamSpec {
                    name: "w_key".into(),
                    shape: vec![self.attn_size, self.key_size],
                    init: uni(self.key_size),
                },
                ParamSpec {
                    name: "v".into(),
                    shape: vec![self.attn_size],
                    init: uni(self.attn_size),
                },
            ],
        }
    }
}

/// A dense layer `y = x·Wᵀ + b` (PyTorch `nn.Linear`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LinearConfig {
    pub in_features: usize,
    pub out_features: usize,
    pub bias: bool,
}

impl LinearConfig {
    pub fn new(in_features: usize, out_features: usize) -> Self {
        Self {
            in_features,
            out_features,
            bias: true,
        }
    }

    pub fn validate(&self) -> Result<()> {
        nonzero("LinearConfig", "in_features", self.in_features)?;
        nonzero("LinearConfig", "out_features", self.out_features)
    }

    /// `weight` `[out, in]` and `bias` `[out]`, both U(−1/√in, 1/√in) as PyTorch initialises them.
    pub fn param_specs(&self) -> Vec<ParamSpec> {
        let init = Init::Uniform(1.0 / (self.in_features as f64).sqrt());
        let mut specs = vec![ParamSpec {
            name: "weight".into(),
            shape: vec![self.out_features, self.in_features],
            init,
        }];
        if self.bias {
            specs.push(ParamSpec {
                name: "bias".into(),
                shape: vec![self.out_features],
                init,
            });
        }
        specs
    }
}

/// A lookup table (PyTorch `nn.Embedding`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EmbeddingConfig {
    pub num_embeddings: usize,
    pub embedding_dim: usize,
    /// Row that reads as given but never receives a gradient (PyTorch `padding_idx`); PyTorch
    /// also zeroes it at init, and so does `Weights::init`.
    pub padding_idx: Option<usize>,
}

impl EmbeddingConfig {
    pub fn new(num_embeddings: usize, embedding_dim: usize) -> Self {
        Self {
            num_embeddings,
            embedding_dim,
            padding_idx: None,
        }
    }

    pub fn padding_idx(mut self, idx: Option<usize>) -> Self {
        self.padding_idx = idx;
        self
    }

    pub fn validate(&self) -> Result<()> {
        nonzero("EmbeddingConfig", "num_embeddings", self.num_embeddings)?;
        nonzero("EmbeddingConfig", "embedding_dim", self.embedding_dim)?;
        match self.padding_idx {
            Some(p) if p >= self.num_embeddings => Err(Error::InvalidConfig {
                config: "EmbeddingConfig",
                field: "padding_idx",
                reason: format!("{p} must be below num_embeddings ({})", self.num_embeddings),
            }),
            _ => Ok(()),
        }
    }

    /// `weight` [V, D], N(0, 1) as PyTorch initialises it.
    pub fn param_specs(&self) -> Vec<ParamSpec> {
        vec![ParamSpec {
            name: "weight".into(),
            shape: vec![self.num_embeddings, self.embedding_dim],
            init: Init::Normal(1.0),
        }]
    }
}

/// Dropout (PyTorch `nn.functional.dropout(x, p, training)`): in training each element is kept
/// with probability `1 − p` and scaled by `1 / (1 − p)`, else zeroed; outside training it is the
/// identity. The mask is drawn from [`crate::philox`] by (seed, stream, element index), which
/// the ops take beside this config.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DropoutConfig {
    /// The probability of zeroing an element, in [0, 1).
    pub p: f64,
    /// `false`: inference, the identity whatever `p`.
    pub training: bool,
}

impl DropoutConfig {
    /// Dropout with probability `p` in training mode.
    pub fn new(p: f64) -> Self {
        Self { p, training: true }
    }

    pub fn training(mut self, yes: bool) -> Self {
        self.training = yes;
        self
    }

    /// `p` must lie in [0, 1): `p` = 1 would scale by 1 / 0 (PyTorch returns zeros instead, a
    /// layer that passes nothing, which is a mistake more often than a choice).
    pub fn validate(&self) -> Result<()> {
        if (0.0..1.0).contains(&self.p) {
            Ok(())
        } else {
            Err(Error::InvalidConfig {
                config: "DropoutConfig",
                field: "p",
                reason: format!("must be in [0, 1), is {}", self.p),
            })
        }
    }

    /// Whether the op changes anything: training with `p` > 0.
    pub fn is_active(&self) -> bool {
        self.training && self.p > 0.0
    }

    /// The factor kept elements are multiplied by, `1 / (1 − p)` (1 when inactive).
    pub fn scale(&self) -> f64 {
        if self.is_active() {
            1.0 / (1.0 - self.p)
        } else {
            1.0
        }
    }

    /// The integer below which an element's Philox word drops it
    /// ([`crate::philox::drop_threshold`]; 0, dropping nothing, when inactive).
    pub fn threshold(&self) -> u32 {
        if self.is_active() {
            crate::philox::drop_threshold(self.p)
        } else {
            0
        }
    }
}

/// How a loss reduces its elements (PyTorch's `reduction=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reduction {
    /// Every element's loss, in the input's shape (`"none"`).
    None,
    /// The mean over the elements that count (`"mean"`).
    Mean,
    /// The sum (`"sum"`).
    Sum,
}
