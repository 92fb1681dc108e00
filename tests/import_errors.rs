//! Every refusal of `wgrnn::import`, and corrupt, truncated and hostile files: each is an
//! `Error::Import` naming the file's part, the node or layer, and the attribute, input or key
//! at fault, never a panic or an allocation the file's bytes do not back.
//!
//! ONNX models are written here field by field (a few lines of protobuf encoding), so each
//! case is one change to a valid LSTM node; Keras archives are the shipped models with one
//! change to `config.json` or to the archive, plus the oracle script's hostile HDF5 files.

use std::io::{Cursor, Read, Write};

use serde_json::{Value, json};
use wgrnn::Error;
use wgrnn::import::{Layer, Module};

use crate::import::fixtures;

/// The error must be an import error of `op` whose item contains `item` and whose field is
/// `field`; the message is printed on failure.
fn expect_import(result: wgrnn::Result<Vec<Module>>, op: &str, item: &str, field: &str) -> String {
    let e = match result {
        Ok(m) => panic!(
            "expected a refusal at {item} `{field}`, got {} modules",
            m.len()
        ),
        Err(e) => e,
    };
    let Error::Import {
        op: got_op,
        item: got_item,
        field: got_field,
        ..
    } = &e
    else {
        panic!("expected Error::Import at {item} `{field}`, got {e:?}");
    };
    assert_eq!(*got_op, op, "{e}");
    assert!(got_item.contains(item), "item: want {item:?} in {e}");
    assert_eq!(got_field, field, "field of {e}");
    e.to_string()
}

/// Protobuf encoding, enough for ONNX's messages.
#[derive(Clone, Default)]
struct Pb(Vec<u8>);

impl Pb {
    fn varint_raw(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(byte);
                break;
            }
            self.0.push(byte | 0x80);
        }
    }

    fn int(mut self, field: u64, v: i64) -> Self {
        self.varint_raw(field << 3);
        self.varint_raw(v as u64);
        self
    }

    fn bytes(mut self, field: u64, b: &[u8]) -> Self {
        self.varint_raw((field << 3) | 2);
        self.varint_raw(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }

    fn str(self, field: u64, s: &str) -> Self {
        self.bytes(field, s.as_bytes())
    }

    fn float(mut self, field: u64, v: f32) -> Self {
        self.varint_raw((field << 3) | 5);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    fn msg(self, field: u64, m: &Pb) -> Self {
        self.bytes(field, &m.0)
    }
}

/// TensorProto: dims (1), data_type (2), name (8), raw_data (9).
fn tensor(name: &str, dims: &[i64], data_type: i64, raw: &[u8]) -> Pb {
    let mut t = Pb::default();
    for &d in dims {
        t = t.int(1, d);
    }
    t.int(2, data_type).str(8, name).bytes(9, raw)
}

fn float_tensor(name: &str, dims: &[i64]) -> Pb {
    let n: i64 = dims.iter().product();
    let raw: Vec<u8> = (0..n)
        .flat_map(|i| (i as f32 * 0.01).to_le_bytes())
        .collect();
    tensor(name, dims, 1, &raw)
}

/// AttributeProto: name (1), type (20) and its value field.
fn attr_int(name: &str, v: i64) -> Pb {
    Pb::default().str(1, name).int(20, 2).int(3, v)
}

fn attr_str(name: &str, v: &str) -> Pb {
    Pb::default().str(1, name).int(20, 3).str(4, v)
}

fn attr_strs(name: &str, vs: &[&str]) -> Pb {
    vs.iter()
        .fold(Pb::default().str(1, name).int(20, 8), |a, v| a.str(9, v))
}

fn attr_float(name: &str, v: f32) -> Pb {
    Pb::default().str(1, name).int(20, 1).float(2, v)
}

fn attr_floats(name: &str, vs: &[f32]) -> Pb {
    vs.iter()
        .fold(Pb::default().str(1, name).int(20, 6), |a, &v| a.float(7, v))
}

/// NodeProto: input (1), output (2), name (3), op_type (4), attribute (5).
fn node(name: &str, op: &str, inputs: &[&str], outputs: &[&str], attrs: &[Pb]) -> Pb {
    let mut n = Pb::default().str(3, name).str(4, op);
    for i in inputs {
        n = n.str(1, i);
    }
    for o in outputs {
        n = n.str(2, o);
    }
    attrs.iter().fold(n, |n, a| n.msg(5, a))
}

/// ModelProto: ir_version (1) and a graph (7) of `nodes` and `inits`.
fn model_bytes(nodes: &[Pb], inits: &[Pb]) -> Vec<u8> {
    let graph = nodes
        .iter()
        .fold(Pb::default(), |g, n| g.msg(1, n))
        .str(2, "g");
    let graph = inits.iter().fold(graph, |g, t| g.msg(5, t));
    Pb::default().int(1, 10).msg(7, &graph).0
}

/// An ONNX model of one `op` node named `lstm` over inputs `inputs`, with `attrs`, and the
/// graph's initializers `inits`.
struct Model {
    op: &'static str,
    inputs: Vec<&'static str>,
    attrs: Vec<Pb>,
    inits: Vec<(&'static str, Pb)>,
}

impl Model {
    /// A valid single-direction LSTM, I = 2, H = 1.
    fn lstm() -> Self {
        Self {
            op: "LSTM",
            inputs: vec!["x", "W", "R", "B"],
            attrs: vec![attr_int("hidden_size", 1)],
            inits: vec![
                ("W", float_tensor("W", &[1, 4, 2])),
                ("R", float_tensor("R", &[1, 4, 1])),
                ("B", float_tensor("B", &[1, 8])),
            ],
        }
    }

    fn attr(mut self, a: Pb) -> Self {
        self.attrs.push(a);
        self
    }

    /// Replaces (or adds) the initializer `name`.
    fn init(mut self, name: &'static str, t: Pb) -> Self {
        self.inits.retain(|(n, _)| *n != name);
        self.inits.push((name, t));
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let node = node("lstm", self.op, &self.inputs, &["Y"], &self.attrs);
        let inits: Vec<Pb> = self.inits.iter().map(|(_, t)| t.clone()).collect();
        model_bytes(&[node], &inits)
    }

    fn read(&self) -> wgrnn::Result<Vec<Module>> {
        wgrnn::import::onnx::from_bytes(&self.bytes())
    }
}

const ONNX: &str = "onnx::read";
const NODE: &str = "node `lstm` (LSTM)";

/// The base model of every ONNX case imports, so each refusal below is its one change.
#[test]
fn the_hand_encoded_lstm_imports() {
    let modules = Model::lstm().read().unwrap();
    assert_eq!(modules.len(), 1);
    assert_eq!(modules[0].name, "lstm");
    let Layer::Rnn(r) = &modules[0].layer else {
        panic!("not recurrent")
    };
    let c = r.weights.config();
    assert_eq!((c.input_size, c.hidden_size, c.bias), (2, 1, true));
}

#[test]
fn onnx_features_wgrnn_does_not_compute_are_refused_by_attribute() {
    let cases: Vec<(&str, Model)> = vec![
        ("clip", Model::lstm().attr(attr_float("clip", 3.0))),
        (
            "input_forget",
            Model::lstm().attr(attr_int("input_forget", 1)),
        ),
        (
            "activations",
            Model::lstm().attr(attr_strs("activations", &["Sigmoid", "Relu", "Tanh"])),
        ),
        (
            "activation_alpha",
            Model::lstm().attr(attr_floats("activation_alpha", &[0.5])),
        ),
        (
            "activation_beta",
            Model::lstm().attr(attr_floats("activation_beta", &[0.5])),
        ),
        ("peepholes", Model::lstm().attr(attr_int("peepholes", 1))),
        (
            "direction",
            Model::lstm().attr(attr_str("direction", "sideways")),
        ),
        ("layout", Model::lstm().attr(attr_int("layout", 2))),
        (
            "hidden_size",
            Model::lstm().attr(attr_int("hidden_size", 3)),
        ),
    ];
    for (field, model) in cases {
        let msg = expect_import(model.read(), ONNX, NODE, field);
        assert!(msg.contains("(bytes)"), "{msg}");
    }
    // A GRU's own attributes: a reset form that is neither 0 nor 1, and an LSTM-only one.
    let gru = || Model {
        op: "GRU",
        inputs: vec!["x", "W", "R"],
        attrs: vec![attr_int("hidden_size", 1)],
        inits: vec![
            ("W", float_tensor("W", &[1, 3, 2])),
            ("R", float_tensor("R", &[1, 3, 1])),
        ],
    };
    assert!(gru().read().is_ok(), "the GRU base imports");
    let node = "node `lstm` (GRU)";
    expect_import(
        gru().attr(attr_int("linear_before_reset", 2)).read(),
        ONNX,
        node,
        "linear_before_reset",
    );
    expect_import(
        gru().attr(attr_int("input_forget", 0)).read(),
        ONNX,
        node,
        "input_forget",
    );
    expect_import(
        gru()
            .attr(attr_strs("activations", &["Sigmoid", "Relu"]))
            .read(),
        ONNX,
        node,
        "activations",
    );
    // An attribute of the wrong type names it.
    expect_import(
        Model::lstm().attr(attr_str("hidden_size", "1")).read(),
        ONNX,
        NODE,
        "hidden_size",
    );
}

#[test]
fn onnx_inputs_that_cannot_be_imported_are_refused_by_name() {
    let mut peephole = Model::lstm();
    peephole.inputs = vec!["x", "W", "R", "B", "", "", "", "P"];
    let msg = expect_import(peephole.read(), ONNX, NODE, "P");
    assert!(msg.contains("peephole"), "{msg}");
    let mut too_many = Model::lstm();
    too_many.inputs = vec!["x", "W", "R", "B", "", "", "", "", "extra"];
    expect_import(too_many.read(), ONNX, NODE, "inputs");
    // W given at run time, not stored in the file.
    let mut runtime = Model::lstm();
    runtime.inputs = vec!["x", "W_input", "R", "B"];
    let msg = expect_import(runtime.read(), ONNX, NODE, "W");
    assert!(msg.contains("W_input"), "{msg}");
    // A constant initial state that is not zeros would be lost.
    let mut h0 = Model::lstm().init("h0", tensor("h0", &[1, 1, 1], 1, &1f32.to_le_bytes()));
    h0.inputs = vec!["x", "W", "R", "B", "", "h0"];
    expect_import(h0.read(), ONNX, NODE, "initial_h");
    // Lengths stored in the file would be lost too.
    let mut lens = Model::lstm().init("lens", tensor("lens", &[1], 6, &3i32.to_le_bytes()));
    lens.inputs = vec!["x", "W", "R", "B", "lens"];
    let msg = expect_import(lens.read(), ONNX, NODE, "sequence_lens");
    assert!(msg.contains("is a constant of the graph"), "{msg}");
}

/// Weights that are not finite (NaN, or a DOUBLE past f32's range) are named; an empty input
/// name is an absent input, never an unnamed initializer.
#[test]
fn onnx_non_finite_weights_and_empty_names_are_refused() {
    let nan = [f32::NAN; 8].map(f32::to_le_bytes).concat();
    let m = Model::lstm().init("B", tensor("B", &[1, 8], 1, &nan));
    let msg = expect_import(m.read(), ONNX, NODE, "B");
    assert!(msg.contains("not finite"), "{msg}");
    let big: Vec<u8> = (0..4).flat_map(|_| 1e300f64.to_le_bytes()).collect();
    let m = Model::lstm().init("R", tensor("R", &[1, 4, 1], 11, &big));
    let msg = expect_import(m.read(), ONNX, NODE, "R");
    assert!(msg.contains("not finite"), "{msg}");
    let mut unnamed = Model::lstm().init("", float_tensor("", &[1, 4, 2]));
    unnamed.inputs = vec!["x", "", "R", "B"];
    expect_import(unnamed.read(), ONNX, NODE, "W");
}

/// The LSTM of [`Model::lstm`] with its initial_h made by `maker` (a node writing `h0`), the
/// graph's initializers plus `extra`.
fn lstm_with_state_maker(maker: Pb, extra: &[Pb]) -> wgrnn::Result<Vec<Module>> {
    let m = Model::lstm();
    let lstm = node(
        "lstm",
        "LSTM",
        &["x", "W", "R", "B", "", "h0"],
        &["Y"],
        &m.attrs,
    );
    let mut inits: Vec<Pb> = m.inits.iter().map(|(_, t)| t.clone()).collect();
    inits.extend_from_slice(extra);
    wgrnn::import::onnx::from_bytes(&model_bytes(&[maker, lstm], &inits))
}

/// An initial state computed from the file's constants alone is lost like a constant one;
/// computed from what the call gives, or zeros from ConstantOfShape, it imports.
#[test]
fn onnx_initial_states_computed_from_constants_are_refused() {
    let ones = tensor("ones", &[1, 1, 1], 1, &1f32.to_le_bytes());
    let copy = node("copy", "Identity", &["ones"], &["h0"], &[]);
    let msg = expect_import(
        lstm_with_state_maker(copy, &[ones]),
        ONNX,
        NODE,
        "initial_h",
    );
    assert!(
        msg.contains("computed from the file's constants alone (by a `Identity` node)"),
        "{msg}"
    );
    let from_input = node("copy", "Identity", &["h_in"], &["h0"], &[]);
    assert_eq!(lstm_with_state_maker(from_input, &[]).unwrap().len(), 1);
    let shape = tensor(
        "shape",
        &[3],
        7,
        &[1i64, 1, 1].map(i64::to_le_bytes).concat(),
    );
    let zeros = node("zeros", "ConstantOfShape", &["shape"], &["h0"], &[]);
    assert_eq!(
        lstm_with_state_maker(zeros, std::slice::from_ref(&shape))
            .unwrap()
            .len(),
        1
    );
    let value = Pb::default()
        .str(1, "value")
        .int(20, 4)
        .msg(5, &tensor("v", &[1], 1, &2f32.to_le_bytes()));
    let twos = node("twos", "ConstantOfShape", &["shape"], &["h0"], &[value]);
    expect_import(
        lstm_with_state_maker(twos, &[shape]),
        ONNX,
        NODE,
        "initial_h",
    );
}

#[test]
fn onnx_weights_whose_shapes_or_types_disagree_are_refused() {
    let cases: Vec<(&str, Model, &str)> = vec![
        (
            "hidden_size",
            Model::lstm().init("R", float_tensor("R", &[1, 4, 2])),
            "R has dims",
        ),
        (
            "B",
            Model::lstm().init("B", float_tensor("B", &[1, 7])),
            "[1, 8]",
        ),
        (
            "W",
            Model::lstm().init("W", float_tensor("W", &[2, 4, 2])),
            "[1, 4, 2]",
        ),
        (
            "W",
            Model::lstm().init("W", tensor("W", &[1, 4, 2], 7, &[0; 64])),
            "INT64",
        ),
        (
            "W",
            Model::lstm().init("W", tensor("W", &[1, 4, 2], 1, &[0; 31])),
            "31 bytes",
        ),
        (
            "W",
            Model::lstm().init("W", float_tensor("W", &[1, 4, 0])),
            "at least 1",
        ),
        (
            "W",
            Model::lstm().init("W", float_tensor("W", &[1, 4])),
            "both must be",
        ),
    ];
    for (field, model, says) in cases {
        let msg = expect_import(model.read(), ONNX, NODE, field);
        assert!(msg.contains(says), "want {says:?} in {msg}");
    }
}

/// Dims far beyond the data: the element count is checked against the bytes present before
/// anything is allocated (and a count past usize is an error, not a wrap).
#[test]
fn onnx_huge_dims_are_refused_without_allocating() {
    let huge = Model::lstm()
        .init("W", tensor("W", &[1, 4, 1 << 40], 1, &[0; 32]))
        .init("R", float_tensor("R", &[1, 4, 1]));
    let msg = expect_import(huge.read(), ONNX, NODE, "W");
    assert!(msg.contains("32 bytes of raw_data"), "{msg}");
    let overflow = Model::lstm().init("W", tensor("W", &[1, 1 << 62, 1 << 62], 1, &[0; 32]));
    let msg = expect_import(overflow.read(), ONNX, NODE, "W");
    assert!(msg.contains("more elements than usize counts"), "{msg}");
    // Without hidden_size, R's dims alone say H; 8·H past usize is refused before any
    // product of it is formed.
    let mut wrap = Model::lstm()
        .init("W", tensor("W", &[1, 4, i64::MAX], 1, &[0; 32]))
        .init("R", tensor("R", &[1, 4, 1 << 61], 1, &[0; 32]));
    wrap.attrs.clear();
    let msg = expect_import(wrap.read(), ONNX, NODE, "R");
    assert!(msg.contains("too large to count"), "{msg}");
    let negative = Model::lstm().init("W", tensor("W", &[1, 4, -2], 1, &[0; 32]));
    expect_import(negative.read(), ONNX, NODE, "W");
}

/// `nodes` LSTM nodes, each over its own input, all sharing one W of 2¹⁶ floats (256 KiB).
fn shared_weight_model(nodes: usize) -> Vec<u8> {
    let i = 1 << 14;
    let nodes: Vec<Pb> = (0..nodes)
        .map(|k| {
            node(
                &format!("lstm{k}"),
                "LSTM",
                &[&format!("x{k}"), "W", "R", "B"],
                &[&format!("Y{k}")],
                &[attr_int("hidden_size", 1)],
            )
        })
        .collect();
    let inits = [
        float_tensor("W", &[1, 4, i]),
        float_tensor("R", &[1, 4, 1]),
        float_tensor("B", &[1, 8]),
    ];
    model_bytes(&nodes, &inits)
}

/// Each node decodes its own copy of a shared initializer: the copies of a file are bounded in
/// all (4 times its size plus 1 MiB), naming the node that goes past.
#[test]
fn many_nodes_sharing_one_initializer_are_bounded_in_all() {
    let few = wgrnn::import::onnx::from_bytes(&shared_weight_model(3)).unwrap();
    assert_eq!(few.len(), 3);
    // 40 copies of 256 KiB from a file of 256 KiB: past the budget of about 2 MiB at the
    // fifth node or so, before its copy is made.
    let msg = expect_import(
        wgrnn::import::onnx::from_bytes(&shared_weight_model(40)),
        ONNX,
        "node `lstm",
        "W",
    );
    assert!(msg.contains("past the"), "{msg}");
    assert!(msg.contains("budget"), "{msg}");
}

/// x → LSTM `lower` → Y1 → Squeeze(axes=[1]) → s1 → LSTM `upper` → Y2 (I = H = 2, one
/// direction): the pattern the exporter writes between two layers of one nn.LSTM; `outputs`
/// are the graph's outputs.
fn two_lstms(lower: &str, upper: &str, outputs: &[&str]) -> Vec<u8> {
    let attrs = [attr_int("hidden_size", 2)];
    let axes = Pb::default().str(1, "axes").int(20, 7).int(8, 1);
    let nodes = [
        node(lower, "LSTM", &["x", "W0", "R0", "B0"], &["Y1"], &attrs),
        node("squeeze", "Squeeze", &["Y1"], &["s1"], &[axes]),
        node(upper, "LSTM", &["s1", "W1", "R1", "B1"], &["Y2"], &attrs),
    ];
    let mut inits = Vec::new();
    for k in 0..2 {
        inits.push(float_tensor(&format!("W{k}"), &[1, 8, 2]));
        inits.push(float_tensor(&format!("R{k}"), &[1, 8, 2]));
        inits.push(float_tensor(&format!("B{k}"), &[1, 16]));
    }
    // As model_bytes, with the graph's outputs (12).
    let graph = nodes
        .iter()
        .fold(Pb::default(), |g, n| g.msg(1, n))
        .str(2, "g");
    let graph = inits.iter().fold(graph, |g, t| g.msg(5, t));
    let graph = outputs
        .iter()
        .fold(graph, |g, o| g.msg(12, &Pb::default().str(1, o)));
    Pb::default().int(1, 10).msg(7, &graph).0
}

fn module_layers(bytes: &[u8]) -> Vec<(String, usize)> {
    wgrnn::import::onnx::from_bytes(bytes)
        .unwrap()
        .iter()
        .map(|m| {
            let Layer::Rnn(r) = &m.layer else {
                panic!("not recurrent")
            };
            (m.name.clone(), r.weights.config().num_layers)
        })
        .collect()
}

/// Two layers of one module join; two modules chained, or a value between them that the graph
/// also returns, stay apart.
#[test]
fn onnx_nodes_join_only_within_one_module_through_private_values() {
    let one = two_lstms("/rnn/LSTM", "/rnn/LSTM_1", &["Y2"]);
    assert_eq!(module_layers(&one), [("rnn".to_string(), 2)]);
    // nn.LSTM `a` feeding nn.LSTM `b`: the same ops between them, other module paths.
    let chained = two_lstms("/a/LSTM", "/b/LSTM", &["Y2"]);
    assert_eq!(
        module_layers(&chained),
        [("a".to_string(), 1), ("b".to_string(), 1)]
    );
    // The squeezed output of the lower layer is also a graph output.
    let returned = two_lstms("/rnn/LSTM", "/rnn/LSTM_1", &["Y2", "s1"]);
    assert_eq!(
        module_layers(&returned),
        [("rnn".to_string(), 1), ("rnn_1".to_string(), 1)]
    );
}

#[test]
fn corrupt_and_truncated_onnx_files_are_errors() {
    let good = Model::lstm().bytes();
    for cut in [1, good.len() / 3, good.len() / 2, good.len() - 1] {
        match wgrnn::import::onnx::from_bytes(&good[..cut]) {
            Ok(m) => panic!("truncated at {cut} of {}: {} modules", good.len(), m.len()),
            Err(Error::Import { op: ONNX, .. }) => {}
            Err(e) => panic!("truncated at {cut}: {e:?}"),
        }
    }
    expect_import(
        wgrnn::import::onnx::from_bytes(&[0xff; 16]),
        ONNX,
        "ModelProto",
        "protobuf",
    );
    // A length prefix claiming more bytes than the file holds.
    let claim = [0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x0a];
    expect_import(
        wgrnn::import::onnx::from_bytes(&claim),
        ONNX,
        "ModelProto",
        "protobuf",
    );
    expect_import(
        wgrnn::import::onnx::from_bytes(&[]),
        ONNX,
        "ModelProto",
        "graph",
    );
    let shipped = std::fs::read(fixtures("onnx").join("torch_lstm_2layer_bidir.onnx")).unwrap();
    for cut in [100, shipped.len() / 2, shipped.len() - 3] {
        assert!(
            wgrnn::import::onnx::from_bytes(&shipped[..cut]).is_err(),
            "cut at {cut}"
        );
    }
}

#[test]
fn onnx_weights_in_an_external_file_are_refused_by_name() {
    let path = fixtures("onnx").join("lstm_external.onnx");
    let msg = expect_import(wgrnn::import::onnx::read(&path), ONNX, "LSTM", "W");
    assert!(msg.contains("lstm_external.onnx.data"), "{msg}");
    assert!(
        msg.contains(&path.display().to_string()),
        "the path is named: {msg}"
    );
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let path = fixtures("onnx").join("no_such_file.onnx");
    for e in [
        wgrnn::import::onnx::read(&path).unwrap_err(),
        wgrnn::import::keras::read(path.with_extension("keras")).unwrap_err(),
    ] {
        assert!(
            matches!(&e, Error::Io { path, .. } if path.contains("no_such_file")),
            "{e:?}"
        );
    }
}

const KERAS: &str = "keras::read";

/// The members of a shipped `.keras` file.
fn members(case: &str) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(fixtures("keras_models").join(format!("{case}.keras"))).unwrap();
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).unwrap();
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            (f.name().to_string(), data)
        })
        .collect()
}

fn archive(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in members {
        w.start_file(name.as_str(), opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// A shipped model with its config edited.
fn with_config(case: &str, edit: impl FnOnce(&mut Value)) -> wgrnn::Result<Vec<Module>> {
    let mut m = members(case);
    let (_, config) = m.iter_mut().find(|(n, _)| n == "config.json").unwrap();
    let mut value: Value = serde_json::from_slice(config).unwrap();
    edit(&mut value);
    *config = serde_json::to_vec(&value).unwrap();
    wgrnn::import::keras::from_bytes(&archive(&m))
}

/// The config of layer `k` of the model (0 is the InputLayer).
fn layer(v: &mut Value, k: usize) -> &mut Value {
    &mut v["config"]["layers"][k]["config"]
}

#[test]
fn a_rebuilt_archive_imports_as_the_shipped_one() {
    let rebuilt = with_config("embed_bilstm_dense", |_| {}).unwrap();
    let path = fixtures("keras_models").join("embed_bilstm_dense.keras");
    assert_eq!(rebuilt, wgrnn::import::keras::read(path).unwrap());
}

#[test]
fn keras_recurrent_options_wgrnn_does_not_compute_are_refused_by_key() {
    let lstm = "layer `lstm` (LSTM)";
    let set = |key: &'static str, value: Value| {
        with_config("lstm_nobias", move |v| layer(v, 1)[key] = value)
    };
    expect_import(
        set("go_backwards", json!(true)),
        KERAS,
        lstm,
        "go_backwards",
    );
    expect_import(set("activation", json!("relu")), KERAS, lstm, "activation");
    let hard = set("recurrent_activation", json!("hard_sigmoid"));
    expect_import(hard, KERAS, lstm, "recurrent_activation");
    let custom = set("activation", json!({"class_name": "MyTanh"}));
    expect_import(custom, KERAS, lstm, "activation");
    let elu = with_config("simple_rnn_dense", |v| {
        layer(v, 1)["activation"] = json!("elu")
    });
    expect_import(elu, KERAS, "layer `simple_rnn` (SimpleRNN)", "activation");
    // null is Keras's linear activation, not the default.
    let msg = expect_import(set("activation", Value::Null), KERAS, lstm, "activation");
    assert!(msg.contains("is null"), "{msg}");
    let null = set("recurrent_activation", Value::Null);
    expect_import(null, KERAS, lstm, "recurrent_activation");
    let linear = with_config("simple_rnn_dense", |v| {
        layer(v, 1)["activation"] = Value::Null
    });
    expect_import(
        linear,
        KERAS,
        "layer `simple_rnn` (SimpleRNN)",
        "activation",
    );
    let mask = with_config("embed_bilstm_dense", |v| {
        layer(v, 1)["mask_zero"] = json!("yes")
    });
    expect_import(mask, KERAS, "layer `embedding` (Embedding)", "mask_zero");
}

/// One change to a layer's config.
type Edit = fn(&mut Value);

#[test]
fn keras_bidirectional_options_wgrnn_does_not_compute_are_refused_by_key() {
    let bidir = "layer `bidirectional` (Bidirectional)";
    let edit = |f: Edit| with_config("embed_bilstm_dense", move |v| f(layer(v, 2)));
    let cases: [(&str, Edit); 6] = [
        ("merge_mode", |b| b["merge_mode"] = json!("sum")),
        // Keras's None: the two directions' outputs returned apart, not concatenated.
        ("merge_mode", |b| b["merge_mode"] = Value::Null),
        ("backward_layer.go_backwards", |b| {
            b["backward_layer"]["config"]["go_backwards"] = json!(false)
        }),
        ("layer.go_backwards", |b| {
            b["layer"]["config"]["go_backwards"] = json!(true)
        }),
        ("backward_layer", |b| {
            b["backward_layer"]["config"]["units"] = json!(6)
        }),
        ("layer", |b| b["layer"]["class_name"] = json!("Dense")),
    ];
    for (key, f) in cases {
        expect_import(edit(f), KERAS, bidir, key);
    }
    let msg = expect_import(
        edit(|b| b["merge_mode"] = Value::Null),
        KERAS,
        bidir,
        "merge_mode",
    );
    assert!(msg.contains("is null"), "{msg}");
    // Absent, the key is Keras's default, concat.
    let absent = edit(|b| {
        b.as_object_mut().unwrap().remove("merge_mode");
    });
    assert_eq!(
        absent.unwrap(),
        with_config("embed_bilstm_dense", |_| {}).unwrap()
    );
}

#[test]
fn keras_layers_the_importer_does_not_read_are_refused_by_class() {
    let insert = |class: &str| {
        let class = class.to_string();
        with_config("lstm_nobias", move |v| {
            let layers = v["config"]["layers"].as_array_mut().unwrap();
            let cfg = json!({"name": "extra", "mask_value": 0.0});
            layers.insert(1, json!({"class_name": class, "config": cfg}));
        })
    };
    let msg = expect_import(
        insert("Conv1D"),
        KERAS,
        "layer `extra` (Conv1D)",
        "class_name",
    );
    assert!(msg.contains("Conv1D"), "{msg}");
    expect_import(
        insert("Masking"),
        KERAS,
        "layer `extra` (Masking)",
        "mask_value",
    );
    expect_import(
        insert("Sequential"),
        KERAS,
        "layer `extra` (Sequential)",
        "class_name",
    );
    let model = with_config("lstm_nobias", |v| v["class_name"] = json!("Subclassed"));
    expect_import(model, KERAS, "(Subclassed)", "class_name");
    let no_layers = with_config("lstm_nobias", |v| v["config"]["layers"] = json!(3));
    expect_import(no_layers, KERAS, "(Sequential)", "layers");
    let no_class = with_config("lstm_nobias", |v| {
        v["config"]["layers"][1] = json!({"config": {}})
    });
    expect_import(no_class, KERAS, "layers[1]", "class_name");
}

/// A config whose sizes disagree with the stored variables names the variable and both shapes.
#[test]
fn keras_variables_that_disagree_with_the_config_are_refused() {
    let units = with_config("lstm_nobias", |v| layer(v, 1)["units"] = json!(5));
    let msg = expect_import(
        units,
        KERAS,
        "layer `lstm` (LSTM)",
        "layers/lstm/cell/vars/0 (kernel)",
    );
    assert!(msg.contains("expected [3, 20]"), "{msg}");
    let bias = with_config("lstm_nobias", |v| layer(v, 1)["use_bias"] = json!(true));
    expect_import(bias, KERAS, "layer `lstm` (LSTM)", "layers/lstm/cell/vars");
    let vocab = with_config("embed_bilstm_dense", |v| {
        layer(v, 1)["input_dim"] = json!(21)
    });
    expect_import(vocab, KERAS, "layer `embedding` (Embedding)", "embeddings");
    let reset = with_config("stacked_gru_before", |v| {
        layer(v, 1)["reset_after"] = json!(true)
    });
    expect_import(
        reset,
        KERAS,
        "layer `gru` (GRU)",
        "layers/gru/cell/vars/2 (bias)",
    );
    // Keras stores variables by class and position (`layers/lstm`), not by layer name: a
    // renamed layer reads the same weights, under its new module name.
    let renamed = with_config("lstm_nobias", |v| layer(v, 1)["name"] = json!("other"));
    let modules = renamed.unwrap();
    assert_eq!(modules.len(), 1);
    assert_eq!(modules[0].name, "other");
    let original =
        wgrnn::import::keras::read(fixtures("keras_models").join("lstm_nobias.keras")).unwrap();
    assert_eq!(modules[0].layer, original[0].layer);
    let zero = with_config("lstm_nobias", |v| layer(v, 1)["units"] = json!(0));
    expect_import(zero, KERAS, "layer `lstm` (LSTM)", "units");
}

/// The oracle script's HDF5 edits: a dataset of 2⁴⁰ rows that was never written, an integer
/// kernel, a missing kernel.
#[test]
fn hostile_weight_files_are_refused_without_allocating() {
    let read = |case: &str| {
        wgrnn::import::keras::read(fixtures("keras_models").join(format!("{case}.keras")))
    };
    let var = "layers/lstm/cell/vars/0";
    let msg = expect_import(read("hostile_huge_dims"), KERAS, "layer `lstm` (LSTM)", var);
    assert!(
        msg.contains("more than a file of this size can hold"),
        "{msg}"
    );
    let msg = expect_import(
        read("hostile_int_kernel"),
        KERAS,
        "layer `lstm` (LSTM)",
        var,
    );
    assert!(msg.contains("expected float32 or float64"), "{msg}");
    // 256 KiB of never-written data from a file of a few KiB: more than the file holds.
    let msg = expect_import(
        read("hostile_unwritten_kernel"),
        KERAS,
        "layer `lstm` (LSTM)",
        var,
    );
    assert!(
        msg.contains("has dims [4096, 16], 262144 bytes, more than a file of this size can hold"),
        "{msg}"
    );
    let msg = expect_import(
        read("hostile_chunked_kernel"),
        KERAS,
        "layer `lstm` (LSTM)",
        var,
    );
    assert!(msg.contains("is chunked (chunks [1, 16])"), "{msg}");
    expect_import(
        read("hostile_missing_var"),
        KERAS,
        "layer `lstm` (LSTM)",
        "layers/lstm/cell/vars",
    );
}

/// The other refusals of a layer's config: a Dense whose units disagree with its kernel, a
/// Bidirectional without the layer it wraps, an archive without its weights.
/// `hostile_shared_vars` with a config of `n` LSTM(256) layers, all reaching the one set of
/// variables (1 MiB) through the file's hard links.
fn shared_vars(n: usize) -> wgrnn::Result<Vec<Module>> {
    with_config("hostile_shared_vars", |v| {
        layer(v, 1)["units"] = json!(256);
        let lstm = v["config"]["layers"][1].clone();
        let layers = v["config"]["layers"].as_array_mut().unwrap();
        layers.truncate(1);
        for k in 0..n {
            let mut l = lstm.clone();
            l["config"]["name"] = json!(format!("lstm{k}"));
            layers.push(l);
        }
    })
}

/// Layers reaching one dataset through HDF5 links decode it once each: bounded in all, as
/// ONNX's shared initializers are.
#[test]
fn keras_layers_sharing_variables_are_bounded_in_all() {
    assert_eq!(shared_vars(3).unwrap().len(), 3);
    // A model.weights.h5 of 1 072 648 bytes allows 4 × that + 1 MiB = 5 339 168 decoded; each
    // layer decodes 12 KiB + 1 MiB = 1 060 864, so five fit and the sixth (`layers/lstm_5`,
    // 22 560 bytes left after its kernel) stops at its recurrent kernel.
    let msg = expect_import(
        shared_vars(8),
        KERAS,
        "layer `lstm5`",
        "layers/lstm_5/cell/vars/1",
    );
    assert!(msg.contains("past the 22560 left"), "{msg}");
}

#[test]
fn keras_configs_missing_their_parts_are_refused() {
    let dense = with_config("embed_bilstm_dense", |v| layer(v, 3)["units"] = json!(4));
    let msg = expect_import(dense, KERAS, "layer `dense` (Dense)", "kernel");
    assert!(msg.contains("expected [10, 4]"), "{msg}");
    let wrapped = with_config("embed_bilstm_dense", |v| {
        layer(v, 2).as_object_mut().unwrap().remove("layer");
    });
    expect_import(
        wrapped,
        KERAS,
        "layer `bidirectional` (Bidirectional)",
        "layer",
    );
    let mut m = members("lstm_nobias");
    m.retain(|(n, _)| n != "model.weights.h5");
    let e = wgrnn::import::keras::from_bytes(&archive(&m));
    expect_import(e, KERAS, "archive", "model.weights.h5");
}

#[test]
fn corrupt_and_truncated_keras_files_are_errors() {
    let shipped = std::fs::read(fixtures("keras_models").join("lstm_nobias.keras")).unwrap();
    for cut in [0, 10, shipped.len() / 2, shipped.len() - 1] {
        expect_import(
            wgrnn::import::keras::from_bytes(&shipped[..cut]),
            KERAS,
            "archive",
            "zip",
        );
    }
    let mut m = members("lstm_nobias");
    m.retain(|(n, _)| n != "config.json");
    expect_import(
        wgrnn::import::keras::from_bytes(&archive(&m)),
        KERAS,
        "archive",
        "config.json",
    );
    let mut m = members("lstm_nobias");
    m.iter_mut().find(|(n, _)| n == "config.json").unwrap().1 = b"{\"class_name\": ".to_vec();
    expect_import(
        wgrnn::import::keras::from_bytes(&archive(&m)),
        KERAS,
        "config.json",
        "json",
    );
    // The weights file cut short, or not HDF5 at all.
    for edit in [
        (|h: &mut Vec<u8>| h.truncate(h.len() / 2)) as fn(&mut Vec<u8>),
        |h| h.truncate(100),
        |h| h.iter_mut().for_each(|b| *b = 0x5a),
    ] {
        let mut m = members("lstm_nobias");
        edit(
            &mut m
                .iter_mut()
                .find(|(n, _)| n == "model.weights.h5")
                .unwrap()
                .1,
        );
        let e = wgrnn::import::keras::from_bytes(&archive(&m)).unwrap_err();
        assert!(
            matches!(&e, Error::Import { op: KERAS, item, .. } if item.contains("model.weights.h5") || item.contains("lstm")),
            "{e:?}"
        );
    }
}

/// An archive whose directory claims a member far larger than deflate could expand its bytes
/// into (a zip bomb's header) is refused before anything is read.
#[test]
fn a_member_claiming_more_than_deflate_expands_is_refused() {
    /// The archive with `member`'s central directory record patched: its compressed size
    /// (offset 20) and uncompressed size (offset 24) set where given.
    fn patched(member: &[u8], compressed: Option<u32>, size: Option<u32>) -> Vec<u8> {
        let mut bytes = archive(&members("lstm_nobias"));
        let start = bytes
            .windows(4)
            .rposition(|w| w == [0x50, 0x4b, 0x05, 0x06])
            .unwrap();
        let dir = u32::from_le_bytes(bytes[start + 16..start + 20].try_into().unwrap()) as usize;
        let mut at = dir;
        loop {
            let name_len = u16::from_le_bytes([bytes[at + 28], bytes[at + 29]]) as usize;
            let extra = u16::from_le_bytes([bytes[at + 30], bytes[at + 31]]) as usize;
            let comment = u16::from_le_bytes([bytes[at + 32], bytes[at + 33]]) as usize;
            if &bytes[at + 46..at + 46 + name_len] == member {
                if let Some(c) = compressed {
                    bytes[at + 20..at + 24].copy_from_slice(&c.to_le_bytes());
                }
                if let Some(n) = size {
                    bytes[at + 24..at + 28].copy_from_slice(&n.to_le_bytes());
                }
                return bytes;
            }
            at += 46 + name_len + extra + comment;
        }
    }
    let bytes = patched(b"config.json", None, Some(0xfff0_0000));
    let msg = expect_import(
        wgrnn::import::keras::from_bytes(&bytes),
        KERAS,
        "archive",
        "config.json",
    );
    assert!(msg.contains("claims"), "{msg}");
    // A compressed size past the archive's own length raises no bound: 2 GiB claimed from a
    // "4 GiB" member of a 2 KiB archive is refused before anything is read.
    let bytes = patched(b"model.weights.h5", Some(0xffff_fff0), Some(0x7fff_ffff));
    let msg = expect_import(
        wgrnn::import::keras::from_bytes(&bytes),
        KERAS,
        "archive",
        "model.weights.h5",
    );
    assert!(msg.contains("claims 2147483647 bytes"), "{msg}");
}

/// A Functional model's layers are read in the order of its config; as its connections are
/// not followed, recurrent layers are not stacked into one module.
#[test]
fn a_functional_models_layers_are_read_one_by_one() {
    let modules = with_config("stacked_gru_before", |v| {
        v["class_name"] = json!("Functional")
    })
    .unwrap();
    let names: Vec<&str> = modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["gru", "gru_1"]);
}

/// Two LSTM nodes each fed by the other's output (a cycle no valid graph has): every node
/// still lands in exactly one module, none is dropped.
#[test]
fn a_cycle_of_recurrent_nodes_loses_no_node() {
    let axes = Pb::default().str(1, "axes").int(20, 7).int(8, 1);
    let h1 = [attr_int("hidden_size", 1)];
    let nodes = [
        node("a", "LSTM", &["yb1", "W", "R"], &["ya"], &h1),
        node(
            "sa",
            "Squeeze",
            &["ya"],
            &["ya1"],
            std::slice::from_ref(&axes),
        ),
        node("b", "LSTM", &["ya1", "W", "R"], &["yb"], &h1),
        node("sb", "Squeeze", &["yb"], &["yb1"], &[axes]),
    ];
    let inits = [float_tensor("W", &[1, 4, 1]), float_tensor("R", &[1, 4, 1])];
    let modules = wgrnn::import::onnx::from_bytes(&model_bytes(&nodes, &inits)).unwrap();
    let layers: usize = modules
        .iter()
        .map(|m| match &m.layer {
            Layer::Rnn(r) => r.weights.config().num_layers,
            _ => 0,
        })
        .sum();
    assert_eq!(layers, 2, "{modules:?}");
}
