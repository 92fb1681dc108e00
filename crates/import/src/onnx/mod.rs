//! ONNX files: the `LSTM`, `GRU` and `RNN` nodes of the main graph, as wgrnn modules.
//!
//! **Maps.** Each node's `hidden_size`; `direction` `forward`, `bidirectional` (a
//! bidirectional module) and `reverse` (a forward module marked [`RnnModule::reverse`](crate::RnnModule::reverse));
//! `layout` 0 (sequence-major) and 1 (`batch_first`; its states stay `[D, B, H]` in wgrnn, ONNX
//! has them `[B, D, H]`); GRU `linear_before_reset` 1 ([`GruReset::After`](wgrnn_core::GruReset::After), PyTorch's) and 0
//! ([`GruReset::Before`](wgrnn_core::GruReset::Before), ONNX's default); RNN `activations` Tanh or Relu. Weights W
//! `[D, G·H, I]` and R `[D, G·H, H]` become `weight_ih_l{k}`, `weight_hh_l{k}` (`_reverse` for
//! the second direction) with the gates reordered (LSTM i,o,f,c → i,f,g,o; GRU z,r,h → r,z,n);
//! B `[D, 2·G·H]` = Wb ‖ Rb becomes `bias_ih`, `bias_hh` (a missing B is `bias=False`). Weights
//! may be FLOAT, DOUBLE, FLOAT16 or BFLOAT16, in `raw_data` or the typed fields, as initializers
//! or `Constant` nodes. `sequence_lens`, `initial_h` and `initial_c` are inputs of each call
//! (`lengths`, `h0`, `c0`): given as (or computed from) graph inputs; constant or computed
//! from constants alone, they are refused by name, except initial states of zeros.
//!
//! **Stacks.** A node whose input X is the output Y of a node of the same kind, through the
//! ops `torch.onnx.export` puts between layers (`Transpose` perm 0,2,1,3 then `Reshape`, or
//! `Squeeze` axis 1 for one direction; `Identity` and `Dropout` anywhere), joins that node's
//! module as its next layer, as `nn.LSTM(num_layers=L)` exports, when both nodes have the
//! same PyTorch module path (or neither has one) and every value from Y to X has that one
//! consumer and is no graph output; otherwise they stay separate modules.
//!
//! **Refuses**, naming the node and the attribute or input: peepholes (input P), `clip`,
//! `input_forget=1`, activations other than the defaults (and relu for RNN),
//! `activation_alpha`/`beta`, unknown attributes, weights that are not constants of the file
//! (external data included; an empty input name is an absent input), weights whose shapes
//! disagree, and weights that are not finite.
//!
//! Module names: the PyTorch module path the exporter recorded (the dynamo exporter's
//! `pkg.torch.onnx.name_scopes`, the TorchScript exporter's `/lstm/LSTM` scopes), else the
//! node's name, else `lstm_0`…; made unique within the file.

use std::path::Path;

use prost::Message;

use crate::convert::{GRU_FROM_ZRH, LSTM_FROM_ONNX, reorder_gates};
use crate::{Layer, Module, RnnModule, Source, host_tensor, unique_names};
use wgrnn_core::{CellKind, LoadOptions, Result, RnnConfig, RnnWeights, TensorMap};

mod chain;
mod node;
mod proto;
mod tensor;

use node::RecurrentNode;

const OP: &str = "onnx::read";

/// The recurrent modules of the ONNX file at `path`, in graph order.
pub fn read(path: impl AsRef<Path>) -> Result<Vec<Module>> {
    let path = path.as_ref();
    let bytes = Source::read_file(path)?;
    decode(&bytes, Source::new(OP, path.display().to_string()))
}

/// [`read`] of a file's bytes (errors name the file as `(bytes)`).
pub fn from_bytes(bytes: &[u8]) -> Result<Vec<Module>> {
    decode(bytes, Source::new(OP, "(bytes)"))
}

fn decode(bytes: &[u8], src: Source) -> Result<Vec<Module>> {
    let src = src.with_budget(crate::decode_budget(bytes.len()));
    let model = proto::ModelProto::decode(bytes)
        .map_err(|e| src.err("ModelProto", "protobuf", format!("does not decode: {e}")))?;
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| src.err("ModelProto", "graph", "is missing"))?;
    let consts = tensor::Constants::new(graph);
    let around = node::Graph::new(graph, &consts);
    let mut nodes = Vec::new();
    for (index, n) in graph.node.iter().enumerate() {
        if let Some(parsed) = node::parse(&src, &around, index, n)? {
            nodes.push(parsed);
        }
    }
    let stacks = chain::stacks(&src, &consts, graph, &nodes);
    let names = unique_names(
        stacks
            .iter()
            .map(|s| module_name(&graph.node[nodes[s[0]].index], nodes[s[0]].cell, s[0]))
            .collect(),
    );
    stacks
        .iter()
        .zip(names)
        .map(|(stack, name)| {
            let layers: Vec<&RecurrentNode> = stack.iter().map(|&k| &nodes[k]).collect();
            let weights = module_weights(&src, &layers)?;
            let rnn = RnnModule {
                weights,
                reverse: layers[0].reverse,
                return_sequences: true,
            };
            Ok(Module {
                name,
                layer: Layer::Rnn(rnn),
            })
        })
        .collect()
}

/// The PyTorch module path the exporter recorded for the node (the dynamo exporter's
/// `pkg.torch.onnx.name_scopes`, the TorchScript exporter's `/lstm/LSTM` name), if any.
pub(crate) fn scope(node: &proto::NodeProto) -> Option<String> {
    let scoped = node
        .metadata_props
        .iter()
        .find(|p| p.key.as_deref() == Some("pkg.torch.onnx.name_scopes"))
        .and_then(|p| dynamo_scope(p.value.as_deref().unwrap_or("")));
    let name = node.name.as_deref().unwrap_or("");
    let torchscript = name.strip_prefix('/').and_then(|n| {
        let (scope, _op) = n.rsplit_once('/')?;
        Some(scope.replace('/', "."))
    });
    scoped.or(torchscript).filter(|s| !s.is_empty())
}

/// The PyTorch module path of the node, or a name made from the node's own.
fn module_name(node: &proto::NodeProto, cell: CellKind, k: usize) -> String {
    let name = node.name.as_deref().unwrap_or("");
    scope(node)
        .or_else(|| (!name.is_empty()).then(|| sanitize(name)))
        .unwrap_or_else(|| format!("{}_{k}", cell.name()))
}

/// `"['', 'encoder', 'rnn', 'lstm']"`: the root, the module path, then the op's own name.
fn dynamo_scope(list: &str) -> Option<String> {
    let inner = list.trim().strip_prefix('[')?.strip_suffix(']')?;
    let parts: Vec<&str> = inner
        .split(',')
        .map(|p| p.trim().trim_matches(|c| c == '\'' || c == '"'))
        .collect();
    let path = parts.get(1..parts.len().checked_sub(1)?)?;
    let path: Vec<&str> = path.iter().copied().filter(|p| !p.is_empty()).collect();
    (!path.is_empty()).then(|| path.join("."))
}

/// A name usable as a safetensors prefix: letters, digits, `_` and `.` kept, the rest `_`.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The weights of a stack of nodes (layer 0 first) in PyTorch's names and gate orders.
fn module_weights(src: &Source, layers: &[&RecurrentNode]) -> Result<RnnWeights<f32>> {
    let first = layers[0];
    let bias = layers.iter().any(|l| l.b.is_some());
    let config = RnnConfig::new(first.cell, first.input, first.hidden)
        .layers(layers.len())
        .bidirectional(first.dirs == 2)
        .batch_first(first.batch_first)
        .bias(bias)
        .gru_reset(first.gru_reset);
    let mut tensors = TensorMap::new();
    for (k, layer) in layers.iter().enumerate() {
        layer_tensors(layer, k, bias, &mut tensors)?;
    }
    RnnWeights::from_tensors(config, tensors, &LoadOptions::strict())
        .map_err(|e| src.err(&first.item, "weights", format!("do not form a module: {e}")))
}

/// One node's W, R, B as layer `k`'s tensors; a node without B in a module with biases gets
/// zeros, which is what ONNX computes without one.
fn layer_tensors(
    layer: &RecurrentNode,
    k: usize,
    bias: bool,
    out: &mut TensorMap<f32>,
) -> Result<()> {
    let (h, i) = (layer.hidden, layer.input);
    let gh = layer.cell.gates() * h;
    let order: &[usize] = match layer.cell {
        CellKind::Lstm => &LSTM_FROM_ONNX,
        CellKind::Gru => &GRU_FROM_ZRH,
        CellKind::RnnTanh | CellKind::RnnRelu => &[0],
    };
    for d in 0..layer.dirs {
        let sfx = RnnConfig::suffix(k, d);
        let w = &layer.w[d * gh * i..(d + 1) * gh * i];
        let r = &layer.r[d * gh * h..(d + 1) * gh * h];
        out.insert(
            format!("weight_ih{sfx}"),
            host_tensor(vec![gh, i], reorder_gates(w, h, i, order))?,
        );
        out.insert(
            format!("weight_hh{sfx}"),
            host_tensor(vec![gh, h], reorder_gates(r, h, h, order))?,
        );
        if !bias {
            continue;
        }
        let (wb, rb) = match &layer.b {
            Some(b) => {
                let b = &b[d * 2 * gh..(d + 1) * 2 * gh];
                (
                    reorder_gates(&b[..gh], h, 1, order),
                    reorder_gates(&b[gh..], h, 1, order),
                )
            }
            None => (vec![0.0; gh], vec![0.0; gh]),
        };
        out.insert(format!("bias_ih{sfx}"), host_tensor(vec![gh], wb)?);
        out.insert(format!("bias_hh{sfx}"), host_tensor(vec![gh], rb)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_exporters_scopes() {
        assert_eq!(
            dynamo_scope("['', 'lstm', 'lstm']").as_deref(),
            Some("lstm")
        );
        assert_eq!(
            dynamo_scope("['', 'enc', 'rnn', 'gru']").as_deref(),
            Some("enc.rnn")
        );
        assert_eq!(dynamo_scope("['', 'lstm']"), None);
        assert_eq!(dynamo_scope("nonsense"), None);
        let node = |name: &str| proto::NodeProto {
            name: Some(name.into()),
            ..Default::default()
        };
        assert_eq!(
            module_name(&node("/enc/rnn/LSTM_1"), CellKind::Lstm, 0),
            "enc.rnn"
        );
        assert_eq!(module_name(&node("my node"), CellKind::Gru, 0), "my_node");
        assert_eq!(module_name(&node(""), CellKind::Gru, 3), "gru_3");
    }
}
