//! The cases the suite's op families share: the recurrent cells, one recurrent call's shape,
//! the attention scores and the attention case matrix. The CPU reference tests and the GPU
//! tests (forward, backward, padding) draw from these, so they cover the same configurations.

use wgrnn::{AttentionConfig, CellKind, GruReset, RnnConfig, Score};

/// One recurrent cell of the test matrix: its kind, and where a GRU applies its reset gate
/// (`RnnConfig::gru_reset`), which gives the device a cell of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cell {
    pub kind: CellKind,
    pub reset: GruReset,
}

impl Cell {
    /// A cell of `kind` in PyTorch's form.
    pub const fn plain(kind: CellKind) -> Self {
        Self {
            kind,
            reset: GruReset::After,
        }
    }

    /// The GRU with the reset gate before the recurrent product.
    pub const GRU_BEFORE: Cell = Cell {
        kind: CellKind::Gru,
        reset: GruReset::Before,
    };

    /// One layer of this cell, as `RnnConfig::new` makes it.
    pub fn config(self, input_size: usize, hidden_size: usize) -> RnnConfig {
        RnnConfig::new(self.kind, input_size, hidden_size).gru_reset(self.reset)
    }
}

/// Every recurrent cell.
pub const CELLS: [Cell; 5] = [
    Cell::plain(CellKind::Lstm),
    Cell::plain(CellKind::Gru),
    Cell::plain(CellKind::RnnTanh),
    Cell::plain(CellKind::RnnRelu),
    Cell::GRU_BEFORE,
];

/// Every attention score function.
pub const SCORES: [Score; 4] = [
    Score::Dot,
    Score::ScaledDot,
    Score::General,
    Score::Additive,
];

/// One recurrent call: the layer, T steps of B sequences, their lengths (`None`: all T), and
/// whether the initial states h0 (and c0 for an LSTM) are given.
pub struct Case {
    pub cfg: RnnConfig,
    pub t: usize,
    pub b: usize,
    pub lengths: Option<Vec<usize>>,
    pub with_state: bool,
}

impl Case {
    /// The input's shape: `[B, T, input]` for batch-first layers, `[T, B, input]` otherwise.
    pub fn x_shape(&self) -> [usize; 3] {
        if self.cfg.batch_first {
            [self.b, self.t, self.cfg.input_size]
        } else {
            [self.t, self.b, self.cfg.input_size]
        }
    }
}

/// Attention of `score` with queries `d` wide: dot scores need keys as wide as the queries,
/// the others take keys one wider and a score layer `d + 3` wide; values are `d + 2` wide.
pub fn attention_config(score: Score, d: usize) -> AttentionConfig {
    match score {
        Score::Dot | Score::ScaledDot => AttentionConfig {
            score,
            query_size: d,
            key_size: d,
            value_size: d + 2,
            attn_size: 0,
        },
        _ => AttentionConfig {
            score,
            query_size: d,
            key_size: d + 1,
            value_size: d + 2,
            attn_size: d + 3,
        },
    }
}

/// One attention call of the device tests: B batches of Tq queries over Tk keys.
pub struct AttentionCase {
    /// The score's index in [`SCORES`] (the tests derive their seeds from it).
    pub index: usize,
    pub score: Score,
    pub b: usize,
    pub tq: usize,
    pub tk: usize,
    pub d: usize,
    pub cfg: AttentionConfig,
}

impl AttentionCase {
    /// Every other batch sees only the first `1 + Tk/2` keys.
    pub fn key_lengths(&self) -> Vec<usize> {
        (0..self.b)
            .map(|j| if j % 2 == 1 { 1 + self.tk / 2 } else { self.tk })
            .collect()
    }
}

/// Every score at B, Tq, Tk, D of one (all 1), of a few, and with Tk past a 64-wide tile.
pub fn attention_cases() -> Vec<AttentionCase> {
    let mut cases = Vec::new();
    for (index, score) in SCORES.into_iter().enumerate() {
        for (b, tq, tk, d) in [(1, 1, 1, 1), (3, 5, 17, 9), (2, 3, 65, 33)] {
            cases.push(AttentionCase {
                index,
                score,
                b,
                tq,
                tk,
                d,
                cfg: attention_config(score, d),
            });
        }
    }
    cases
}

/// The LSTM projection (`proj_size` P < H) beside the plain cells: odd sizes, a deep
/// bidirectional stack with uneven lengths and initial states, a unidirectional stack (the
/// wavefront's), batch-first, P = 1, and a single step of one sequence without biases.
pub fn projection_cases() -> Vec<Case> {
    let lstm = |i, h, p| RnnConfig::new(CellKind::Lstm, i, h).proj_size(p);
    let case = |cfg, t, b, lengths: Option<Vec<usize>>, with_state| Case {
        cfg,
        t,
        b,
        lengths,
        with_state,
    };
    vec![
        case(
            lstm(5, 17, 3).layers(3).bidirectional(true),
            6,
            5,
            Some(vec![6, 1, 4, 6, 2]),
            true,
        ),
        case(lstm(3, 65, 17), 4, 3, None, false),
        case(lstm(4, 9, 1).layers(3), 9, 3, Some(vec![9, 4, 7]), true),
        case(
            lstm(5, 9, 4)
                .layers(2)
                .bidirectional(true)
                .batch_first(true),
            5,
            3,
            Some(vec![2, 5, 3]),
            true,
        ),
        case(lstm(2, 3, 2).bias(false), 1, 1, None, true),
    ]
}

/// Inter-layer dropout (training calls): a deep bidirectional LSTM with uneven lengths, a
/// unidirectional GRU stack (the wavefront's), and a projected batch-first LSTM.
pub fn dropout_cases() -> Vec<Case> {
    let case = |cfg, t, b, lengths: Option<Vec<usize>>| Case {
        cfg,
        t,
        b,
        lengths,
        with_state: true,
    };
    let lstm = RnnConfig::new(CellKind::Lstm, 5, 17).dropout(0.3);
    vec![
        case(
            lstm.clone().layers(3).bidirectional(true),
            6,
            5,
            Some(vec![6, 1, 4, 6, 2]),
        ),
        case(
            RnnConfig::new(CellKind::Gru, 4, 9).layers(3).dropout(0.5),
            9,
            3,
            Some(vec![9, 4, 7]),
        ),
        case(
            lstm.proj_size(6)
                .layers(2)
                .bidirectional(true)
                .batch_first(true),
            5,
            3,
            Some(vec![2, 5, 3]),
        ),
    ]
}
