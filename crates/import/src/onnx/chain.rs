//! Stacks: the single-layer nodes that PyTorch's exporter writes for one multi-layer module,
//! joined back into it.

use std::collections::HashMap;

use super::node::RecurrentNode;
use super::proto::{GraphProto, NodeProto, attribute_type};
use super::tensor::{Constants, ints};
use crate::Source;

/// The ops met between two layers, walking from the upper layer's X back to the lower's Y.
#[derive(Default)]
struct Between {
    transpose: bool,
    reshape: bool,
    squeeze: bool,
}

/// The nodes grouped into modules: each group lists indices into `nodes`, layer 0 first, and
/// the groups are in the order of their first layer.
pub(crate) fn stacks(
    src: &Source,
    consts: &Constants,
    graph: &GraphProto,
    nodes: &[RecurrentNode],
) -> Vec<Vec<usize>> {
    let producer: HashMap<&str, usize> = graph
        .node
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i)))
        .collect();
    let by_graph_index: HashMap<usize, usize> = nodes
        .iter()
        .enumerate()
        .map(|(k, n)| (n.index, k))
        .collect();
    let outputs: Vec<&str> = graph
        .output
        .iter()
        .filter_map(|o| o.name.as_deref())
        .collect();
    let mut consumers: HashMap<&str, usize> = HashMap::new();
    for n in &graph.node {
        for i in n.input.iter().filter(|i| !i.is_empty()) {
            *consumers.entry(i.as_str()).or_default() += 1;
        }
    }
    // A value between two layers of one module feeds only the next op and leaves the graph
    // nowhere else.
    let private = |v: &str| consumers.get(v).copied() == Some(1) && !outputs.contains(&v);
    // below[k]: the node that layer k continues, where the export's pattern joins them.
    let mut below: Vec<Option<usize>> = vec![None; nodes.len()];
    let mut taken = vec![false; nodes.len()];
    for (k, upper) in nodes.iter().enumerate() {
        let Some((lower, path)) = lower_layer(src, consts, graph, &producer, upper) else {
            continue;
        };
        if !path.iter().all(|v| private(v))
            || super::scope(&graph.node[lower]) != super::scope(&graph.node[upper.index])
        {
            continue;
        }
        let Some(&j) = by_graph_index.get(&lower) else {
            continue;
        };
        // ONNX lists nodes in topological order, so a layer below comes first; requiring it
        // also keeps a hostile graph's cycle from forming a stack that never starts.
        let earlier = nodes[j].index < upper.index;
        if earlier && !taken[j] && joins(&nodes[j], upper) {
            below[k] = Some(j);
            taken[j] = true;
        }
    }
    let mut groups = Vec::new();
    for k in 0..nodes.len() {
        if below[k].is_some() {
            continue;
        }
        // k starts a stack; follow the layers that continue it.
        let mut group = vec![k];
        while let Some(next) = below
            .iter()
            .position(|b| *b == Some(*group.last().unwrap_or(&k)))
        {
            group.push(next);
        }
        groups.push(group);
    }
    groups
}

/// Whether `upper` can be the layer above `lower` in one PyTorch module.
fn joins(lower: &RecurrentNode, upper: &RecurrentNode) -> bool {
    lower.cell == upper.cell
        && lower.gru_reset == upper.gru_reset
        && lower.hidden == upper.hidden
        && lower.dirs == upper.dirs
        && !lower.reverse
        && !upper.reverse
        && !lower.batch_first
        && !upper.batch_first
        && lower.sequence_lens == upper.sequence_lens
        && upper.input == lower.dirs * lower.hidden
}

fn ints_attr<'n>(node: &'n NodeProto, name: &str) -> Option<&'n [i64]> {
    node.attribute
        .iter()
        .find(|a| {
            a.name.as_deref() == Some(name) && a.r#type.is_none_or(|t| t == attribute_type::INTS)
        })
        .map(|a| a.ints.as_slice())
}

/// The graph index of the recurrent node whose Y reaches `upper`'s X through the ops the
/// exporter writes between layers, if one does, and the values on the way (X back to Y).
fn lower_layer<'g>(
    src: &Source,
    consts: &Constants,
    graph: &'g GraphProto,
    producer: &HashMap<&str, usize>,
    upper: &'g RecurrentNode,
) -> Option<(usize, Vec<&'g str>)> {
    let mut value = upper.x.as_str();
    let mut seen = Between::default();
    let mut path = Vec::new();
    // A few ops at most lie between layers; the bound also ends any cycle of a broken graph.
    for _ in 0..8 {
        path.push(value);
        let &p = producer.get(value)?;
        let node = &graph.node[p];
        let op = node.op_type.as_deref().unwrap_or("");
        match op {
            "LSTM" | "GRU" | "RNN" => {
                let dirs = if node.attribute.iter().any(|a| {
                    a.name.as_deref() == Some("direction")
                        && a.s.as_deref() == Some(b"bidirectional")
                }) {
                    2
                } else {
                    1
                };
                let pattern = (seen.transpose && seen.reshape && !seen.squeeze)
                    || (dirs == 1 && seen.squeeze && !seen.transpose && !seen.reshape);
                return (node.output.first().map(String::as_str) == Some(value) && pattern)
                    .then_some((p, path));
            }
            "Transpose" if ints_attr(node, "perm") == Some(&[0, 2, 1, 3]) => seen.transpose = true,
            "Reshape" => seen.reshape = true,
            "Squeeze" if squeezes_axis_1(src, consts, node) => seen.squeeze = true,
            "Identity" | "Dropout" => {}
            _ => return None,
        }
        value = node.input.first()?.as_str();
    }
    None
}

/// A `Squeeze` of axis 1 only: the axes as an attribute (opset < 13) or a constant input.
fn squeezes_axis_1(src: &Source, consts: &Constants, node: &NodeProto) -> bool {
    if let Some(axes) = ints_attr(node, "axes") {
        return axes == [1];
    }
    let Some(t) = node.input.get(1).and_then(|a| consts.get(a)) else {
        return false;
    };
    ints(src, "Squeeze", "axes", t).is_ok_and(|a| a == [1])
}
