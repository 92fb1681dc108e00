//! One `LSTM`, `GRU` or `RNN` node: its attributes checked against what wgrnn computes, its
//! weights decoded and their shapes checked against each other.

use std::collections::{HashMap, HashSet};

use super::proto::{AttributeProto, GraphProto, NodeProto, attribute_type};
use super::tensor::{Constants, floats};
use crate::Source;
use wgrnn_core::{CellKind, GruReset, Result};

/// A recurrent node as read, its weights still in ONNX's layout and gate order:
/// W `[D, G·H, I]`, R `[D, G·H, H]`, B `[D, 2·G·H]` (Wb ‖ Rb).
#[derive(Debug)]
pub(crate) struct RecurrentNode {
    /// Position in the graph's node list.
    pub index: usize,
    /// How errors name the node: "node `/lstm/LSTM` (LSTM)".
    pub item: String,
    pub cell: CellKind,
    pub gru_reset: GruReset,
    pub hidden: usize,
    pub input: usize,
    pub dirs: usize,
    pub reverse: bool,
    pub batch_first: bool,
    pub w: Vec<f32>,
    pub r: Vec<f32>,
    pub b: Option<Vec<f32>>,
    /// Value names: the input X, `sequence_lens` ("" when none).
    pub x: String,
    pub sequence_lens: String,
}

/// The attributes wgrnn reads; any other is refused by name.
struct Attrs {
    hidden_size: Option<i64>,
    direction: String,
    layout: i64,
    linear_before_reset: i64,
    activations: Option<Vec<String>>,
}

fn expect_type(src: &Source, item: &str, a: &AttributeProto, want: i32, what: &str) -> Result<()> {
    match a.r#type {
        Some(t) if t != want => Err(src.err(
            item,
            a.name.as_deref().unwrap_or(""),
            format!("has attribute type {t}, expected {what}"),
        )),
        _ => Ok(()),
    }
}

fn int_attr(src: &Source, item: &str, a: &AttributeProto) -> Result<i64> {
    expect_type(src, item, a, attribute_type::INT, "INT")?;
    Ok(a.i.unwrap_or(0))
}

/// What wgrnn cannot compute: named, with the value found.
fn unsupported(src: &Source, item: &str, name: &str, what: String) -> wgrnn_core::Error {
    src.err(item, name, format!("{what}, which wgrnn does not compute"))
}

fn parse_attrs(src: &Source, item: &str, cell_op: &str, node: &NodeProto) -> Result<Attrs> {
    let mut attrs = Attrs {
        hidden_size: None,
        direction: "forward".into(),
        layout: 0,
        linear_before_reset: 0,
        activations: None,
    };
    for a in &node.attribute {
        let name = a.name.as_deref().unwrap_or("");
        match (name, cell_op) {
            ("hidden_size", _) => attrs.hidden_size = Some(int_attr(src, item, a)?),
            ("layout", _) => attrs.layout = int_attr(src, item, a)?,
            ("linear_before_reset", "GRU") => attrs.linear_before_reset = int_attr(src, item, a)?,
            ("direction", _) => {
                expect_type(src, item, a, attribute_type::STRING, "STRING")?;
                attrs.direction = String::from_utf8_lossy(a.s.as_deref().unwrap_or(b"")).into();
            }
            ("activations", _) => {
                expect_type(src, item, a, attribute_type::STRINGS, "STRINGS")?;
                let names = a
                    .strings
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned());
                attrs.activations = Some(names.collect());
            }
            ("input_forget", "LSTM") => {
                let v = int_attr(src, item, a)?;
                if v != 0 {
                    let what = format!("is {v}: coupled input and forget gates");
                    return Err(unsupported(src, item, name, what));
                }
            }
            ("clip", _) => {
                expect_type(src, item, a, attribute_type::FLOAT, "FLOAT")?;
                let what = format!("is {}: cell clipping", a.f.unwrap_or(0.0));
                return Err(unsupported(src, item, name, what));
            }
            ("activation_alpha" | "activation_beta", _) => {
                expect_type(src, item, a, attribute_type::FLOATS, "FLOATS")?;
                if !a.floats.is_empty() {
                    let what = format!("is {:?}: parameterised activations", a.floats);
                    return Err(unsupported(src, item, name, what));
                }
            }
            _ => {
                let why = format!("is not an attribute of {cell_op} that wgrnn knows");
                return Err(src.err(item, name, why));
            }
        }
    }
    Ok(attrs)
}

/// The cell an op and its activations compute: the spec's defaults for each op, and relu
/// for RNN; anything else is refused naming the attribute.
fn cell_of(
    src: &Source,
    item: &str,
    op: &str,
    acts: &Option<Vec<String>>,
    dirs: usize,
) -> Result<CellKind> {
    let (cell, defaults): (CellKind, &[&str]) = match op {
        "LSTM" => (CellKind::Lstm, &["sigmoid", "tanh", "tanh"]),
        "GRU" => (CellKind::Gru, &["sigmoid", "tanh"]),
        _ => (CellKind::RnnTanh, &["tanh"]),
    };
    let Some(acts) = acts else { return Ok(cell) };
    let lower: Vec<String> = acts.iter().map(|a| a.to_ascii_lowercase()).collect();
    let per_dir =
        |set: &[&str]| lower.len() == set.len() * dirs && lower.chunks(set.len()).all(|c| c == set);
    if per_dir(defaults) {
        return Ok(cell);
    }
    if op == "RNN" && per_dir(&["relu"]) {
        return Ok(CellKind::RnnRelu);
    }
    let want = defaults.join(", ");
    let what = format!(
        "is {acts:?} (the supported ones are {want} per direction{})",
        if op == "RNN" { ", or relu" } else { "" }
    );
    Err(unsupported(src, item, "activations", what))
}

/// The node's input `k`, "" when absent or left empty.
fn input(node: &NodeProto, k: usize) -> &str {
    node.input.get(k).map_or("", String::as_str)
}

/// The constant input `k` (`field` is its spec name) as floats, checked to have `want` dims.
fn weight(
    src: &Source,
    consts: &Constants,
    item: &str,
    node: &NodeProto,
    k: usize,
    field: &str,
    want: &[usize],
) -> Result<Vec<f32>> {
    let name = input(node, k);
    let t = consts.get(name).ok_or_else(|| {
        src.err(
            item,
            field,
            format!("(`{name}`) is not an initializer or a Constant of the graph; wgrnn imports weights stored in the file"),
        )
    })?;
    let f = floats(src, item, field, t)?;
    if f.dims != want {
        return Err(src.err(
            item,
            field,
            format!("has shape {:?}, expected {want:?}", f.dims),
        ));
    }
    if let Some(k) = f.data.iter().position(|v| !v.is_finite()) {
        return Err(src.err(
            item,
            field,
            format!(
                "(`{name}`) holds {} at element {k}: not finite (NaN, infinite, or a DOUBLE past \
                 float32's range)",
                f.data[k]
            ),
        ));
    }
    Ok(f.data)
}

/// The graph around a node: its constants and which node makes each value.
pub(crate) struct Graph<'g> {
    pub consts: &'g Constants<'g>,
    pub graph: &'g GraphProto,
    pub producer: HashMap<&'g str, usize>,
}

impl<'g> Graph<'g> {
    pub(crate) fn new(graph: &'g GraphProto, consts: &'g Constants<'g>) -> Self {
        let producer = graph
            .node
            .iter()
            .enumerate()
            .flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i)))
            .collect();
        Self {
            consts,
            graph,
            producer,
        }
    }

    /// Whether `value` depends on anything given at run time (a graph input, or a name no
    /// constant or node makes), rather than on the file's constants alone.
    fn runtime(&self, value: &'g str) -> bool {
        let mut stack = vec![value];
        let mut seen = HashSet::new();
        while let Some(v) = stack.pop() {
            if v.is_empty() || !seen.insert(v) || self.consts.get(v).is_some() {
                continue;
            }
            let Some(&p) = self.producer.get(v) else {
                return true;
            };
            stack.extend(self.graph.node[p].input.iter().map(String::as_str));
        }
        false
    }
}

/// The node's input `k` (`field`), which wgrnn takes as an input of each call (`lengths`,
/// `h0`, `c0`): fine when given at run time; a constant one would be lost, so it is refused,
/// except an initial state of zeros (`zeros_ok`), which is what wgrnn starts from.
fn check_call_input(
    src: &Source,
    g: &Graph,
    item: &str,
    node: &NodeProto,
    k: usize,
    field: &str,
    zeros_ok: bool,
) -> Result<()> {
    let name = input(node, k);
    if name.is_empty() {
        return Ok(());
    }
    let how = if zeros_ok {
        "wgrnn takes initial states as inputs of each call, so give it as a graph input"
    } else {
        "wgrnn takes lengths as an input of each call (`lengths`), so give it as a graph input"
    };
    if let Some(t) = g.consts.get(name) {
        if !zeros_ok {
            let why = format!("(`{name}`) is a constant of the graph; {how}");
            return Err(src.err(item, field, why));
        }
        let f = floats(src, item, field, t)?;
        if f.data.iter().any(|&v| v != 0.0) {
            let why = format!("(`{name}`) is a constant that is not all zeros; {how}");
            return Err(src.err(item, field, why));
        }
        return Ok(());
    }
    if g.runtime(name) {
        return Ok(());
    }
    let maker = g.producer.get(name).map(|&p| &g.graph.node[p]);
    let op = maker.and_then(|n| n.op_type.as_deref()).unwrap_or("");
    if zeros_ok && op == "ConstantOfShape" && maker.is_some_and(|n| zero_fill(src, item, field, n))
    {
        return Ok(());
    }
    let why = format!(
        "(`{name}`) is computed from the file's constants alone (by a `{op}` node), values that \
         would be lost; {how}"
    );
    Err(src.err(item, field, why))
}

/// Whether a `ConstantOfShape` fills with zeros (its `value`, 0 when absent).
fn zero_fill(src: &Source, item: &str, field: &str, n: &NodeProto) -> bool {
    let Some(a) = n
        .attribute
        .iter()
        .find(|a| a.name.as_deref() == Some("value"))
    else {
        return true;
    };
    a.t.as_ref()
        .and_then(|t| floats(src, item, field, t).ok())
        .is_some_and(|f| f.data.iter().all(|&v| v == 0.0))
}

/// The input count and the peephole input P, which wgrnn has no weights for.
fn check_inputs(src: &Source, item: &str, op: &str, node: &NodeProto) -> Result<()> {
    let max_inputs = if op == "LSTM" { 8 } else { 6 };
    if node.input.len() > max_inputs {
        let why = format!("are {}, {op} has at most {max_inputs}", node.input.len());
        return Err(src.err(item, "inputs", why));
    }
    if op == "LSTM" && !input(node, 7).is_empty() {
        let what = format!("is `{}`: peephole connections", input(node, 7));
        return Err(unsupported(src, item, "P", what));
    }
    Ok(())
}

/// What the enumerated attributes choose.
struct Forms {
    dirs: usize,
    reverse: bool,
    batch_first: bool,
    gru_reset: GruReset,
}

fn forms(src: &Source, item: &str, attrs: &Attrs) -> Result<Forms> {
    let (dirs, reverse) = match attrs.direction.as_str() {
        "forward" => (1, false),
        "reverse" => (1, true),
        "bidirectional" => (2, false),
        d => {
            let why = format!("is `{d}`, expected forward, reverse or bidirectional");
            return Err(src.err(item, "direction", why));
        }
    };
    let batch_first = match attrs.layout {
        0 => false,
        1 => true,
        l => return Err(src.err(item, "layout", format!("is {l}, expected 0 or 1"))),
    };
    let gru_reset = match attrs.linear_before_reset {
        0 => GruReset::Before,
        1 => GruReset::After,
        v => {
            let why = format!("is {v}, expected 0 or 1");
            return Err(src.err(item, "linear_before_reset", why));
        }
    };
    Ok(Forms {
        dirs,
        reverse,
        batch_first,
        gru_reset,
    })
}

/// Reads `node` (at `index`) if it is a recurrent op of the default domain.
pub(crate) fn parse(
    src: &Source,
    g: &Graph,
    index: usize,
    node: &NodeProto,
) -> Result<Option<RecurrentNode>> {
    let op = node.op_type.as_deref().unwrap_or("");
    let domain = node.domain.as_deref().unwrap_or("");
    if !matches!(op, "LSTM" | "GRU" | "RNN") || !(domain.is_empty() || domain == "ai.onnx") {
        return Ok(None);
    }
    let item = format!("node `{}` ({op})", node.name.as_deref().unwrap_or(""));
    check_inputs(src, &item, op, node)?;
    let attrs = parse_attrs(src, &item, op, node)?;
    let Forms {
        dirs,
        reverse,
        batch_first,
        gru_reset,
    } = forms(src, &item, &attrs)?;
    let cell = cell_of(src, &item, op, &attrs.activations, dirs)?;
    let consts = g.consts;
    let sizes = sizes(src, consts, &item, node, cell, dirs, attrs.hidden_size)?;
    let (h, i, gh) = (sizes.0, sizes.1, cell.gates() * sizes.0);
    let w = weight(src, consts, &item, node, 1, "W", &[dirs, gh, i])?;
    let r = weight(src, consts, &item, node, 2, "R", &[dirs, gh, h])?;
    let b = match input(node, 3) {
        "" => None,
        _ => Some(weight(src, consts, &item, node, 3, "B", &[dirs, 2 * gh])?),
    };
    check_call_input(src, g, &item, node, 4, "sequence_lens", false)?;
    check_call_input(src, g, &item, node, 5, "initial_h", true)?;
    if op == "LSTM" {
        check_call_input(src, g, &item, node, 6, "initial_c", true)?;
    }
    Ok(Some(RecurrentNode {
        index,
        item,
        cell,
        gru_reset: if cell == CellKind::Gru {
            gru_reset
        } else {
            GruReset::After
        },
        hidden: h,
        input: i,
        dirs,
        reverse,
        batch_first,
        w,
        r,
        b,
        x: input(node, 0).to_string(),
        sequence_lens: input(node, 4).to_string(),
    }))
}

/// (H, I) from R's and W's dims, checked against `hidden_size` and the gate count before any
/// data is decoded, so a wrong size is named by the tensor that shows it.
fn sizes(
    src: &Source,
    consts: &Constants,
    item: &str,
    node: &NodeProto,
    cell: CellKind,
    dirs: usize,
    hidden_size: Option<i64>,
) -> Result<(usize, usize)> {
    let dims = |k: usize, field: &str| -> Result<Vec<i64>> {
        let name = input(node, k);
        consts.get(name).map(|t| t.dims.clone()).ok_or_else(|| {
            src.err(item, field, format!("(`{name}`) is not an initializer or a Constant of the graph; wgrnn imports weights stored in the file"))
        })
    };
    let (w, r) = (dims(1, "W")?, dims(2, "R")?);
    let (&[_, _, i], &[_, _, h]) = (w.as_slice(), r.as_slice()) else {
        return Err(src.err(
            item,
            "W",
            format!(
                "has dims {w:?} and R {r:?}; both must be [num_directions, gates·hidden_size, ·]"
            ),
        ));
    };
    let h = match hidden_size {
        Some(hs) if hs != h => {
            return Err(src.err(
                item,
                "hidden_size",
                format!("is {hs}, but R has dims {r:?}"),
            ));
        }
        _ => h,
    };
    let (Ok(h), Ok(i)) = (usize::try_from(h), usize::try_from(i)) else {
        return Err(src.err(
            item,
            "W",
            format!("has dims {w:?} and R {r:?}, with negative sizes"),
        ));
    };
    if h == 0 || i == 0 {
        return Err(src.err(
            item,
            "W",
            format!("has dims {w:?} and R {r:?}: hidden and input sizes must be at least 1"),
        ));
    }
    // The products of `weight`'s shape checks must not wrap: G·H, and 2·G·H for B.
    if h.checked_mul(2 * cell.gates())
        .and_then(|gh| gh.checked_mul(dirs))
        .is_none()
    {
        return Err(src.err(
            item,
            "R",
            format!("has dims {r:?}, a hidden size too large to count"),
        ));
    }
    Ok((h, i))
}
