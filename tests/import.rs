//! `wgrnn::import` against the frameworks: every ONNX file in `tests/fixtures/onnx` (exported by
//! `torch.onnx.export` or built node by node, see its README) is imported and run on the CPU
//! reference and the GPU, and the results must match onnxruntime's outputs stored beside it;
//! every `.keras` file in `tests/fixtures/keras_models` likewise against Keras's outputs. The
//! refusals and the corrupt files are in `import_errors.rs`.

use std::path::{Path, PathBuf};

use wgrnn::core::{SafetensorsFile, Tensor};
use wgrnn::import::{Layer, Module, RnnModule, reverse_sequences};
use wgrnn::{CellKind, GruReset};

use crate::common::{F32_FORWARD, Tolerance, assert_tensor_close};

/// onnxruntime and Keras on JAX compute in f32 as wgrnn does, over at most a few dozen terms
/// per sum and 5 steps, so the results agree within a few ulps of O(1) values: the suite's
/// forward bound.
const FRAMEWORK: Tolerance = F32_FORWARD;

pub fn fixtures(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir)
}

/// The files of `dir` ending in `.ext`, sorted, with their stems.
pub fn files_with(dir: &str, ext: &str) -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(fixtures(dir))
        .expect("fixture directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    found.sort();
    found
}

/// Every ONNX file that has outputs beside it, imported, with those outputs.
fn onnx_cases() -> Vec<(String, Vec<Module>, SafetensorsFile)> {
    let cases: Vec<_> = files_with("onnx", "onnx")
        .into_iter()
        .filter_map(|(name, path)| {
            let io = path.with_extension("safetensors");
            io.exists().then(|| {
                let modules =
                    wgrnn::import::onnx::read(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
                let file = SafetensorsFile::read(&io).unwrap_or_else(|e| panic!("{name}: {e}"));
                (name, modules, file)
            })
        })
        .collect();
    assert!(
        cases.len() >= 12,
        "expected the 12 shipped ONNX cases, found {}",
        cases.len()
    );
    cases
}

fn meta<'a>(name: &str, file: &'a SafetensorsFile, key: &str) -> &'a str {
    file.meta(key)
        .unwrap_or_else(|| panic!("{name}: metadata `{key}` missing"))
}

/// The one recurrent module of a case, its config checked against what the oracle script
/// built (`expect.*`).
fn the_rnn<'m>(name: &str, modules: &'m [Module], file: &SafetensorsFile) -> &'m RnnModule {
    assert_eq!(modules.len(), 1, "{name}: modules {modules:?}");
    let Layer::Rnn(rnn) = &modules[0].layer else {
        panic!("{name}: not a recurrent module");
    };
    let c = rnn.weights.config();
    let e = |k: &str| meta(name, file, &format!("expect.{k}"));
    let got = [
        ("name", modules[0].name.clone()),
        ("cell", c.cell.name().to_string()),
        ("input_size", c.input_size.to_string()),
        ("hidden_size", c.hidden_size.to_string()),
        ("num_layers", c.num_layers.to_string()),
        ("bidirectional", c.bidirectional.to_string()),
        ("batch_first", c.batch_first.to_string()),
        ("bias", c.bias.to_string()),
        ("gru_reset", c.gru_reset.name().to_string()),
        ("reverse", rnn.reverse.to_string()),
    ];
    for (key, value) in got {
        assert_eq!(value, e(key), "{name}: {key}");
    }
    rnn
}

/// A recurrent call's host inputs and outputs, in wgrnn's layouts.
pub struct Run {
    pub x: Tensor<f32>,
    pub h0: Option<Tensor<f32>>,
    pub c0: Option<Tensor<f32>>,
    pub lengths: Vec<usize>,
}

pub struct Outputs {
    pub y: Tensor<f32>,
    pub h_n: Tensor<f32>,
    pub c_n: Option<Tensor<f32>>,
}

impl Run {
    fn from_file(file: &SafetensorsFile) -> Self {
        let opt = |n: &str| file.tensors.contains_key(n).then(|| file.real(n).unwrap());
        let lengths = file
            .ids("lengths")
            .unwrap()
            .data()
            .iter()
            .map(|&l| l as usize)
            .collect();
        Self {
            x: file.real("x").unwrap(),
            h0: opt("h0"),
            c0: opt("c0"),
            lengths,
        }
    }

    /// The input as the module's stored forward weights take it: reversed within each length
    /// for a reverse module.
    fn input_for(&self, rnn: &RnnModule) -> Tensor<f32> {
        let bf = rnn.weights.config().batch_first;
        if rnn.reverse {
            reverse_sequences(&self.x, Some(&self.lengths), bf).unwrap()
        } else {
            self.x.clone()
        }
    }

    /// Back from the forward weights' output to the module's.
    fn output_of(rnn: &RnnModule, lengths: &[usize], mut out: Outputs) -> Outputs {
        if rnn.reverse {
            out.y =
                reverse_sequences(&out.y, Some(lengths), rnn.weights.config().batch_first).unwrap();
        }
        out
    }

    pub fn cpu(&self, rnn: &RnnModule) -> Outputs {
        let x = self.input_for(rnn);
        let mut input = wgrnn::cpu::RnnInput::new(&x).lengths(&self.lengths);
        input.h0 = self.h0.as_ref();
        input.c0 = self.c0.as_ref();
        let out = wgrnn::cpu::rnn_forward(&rnn.weights, input).unwrap();
        let out = Outputs {
            y: out.y,
            h_n: out.h_n,
            c_n: out.c_n,
        };
        Self::output_of(rnn, &self.lengths, out)
    }

    pub fn gpu(&self, rnn: &RnnModule) -> Outputs {
        let ctx = crate::gpu::ctx();
        let gw = wgrnn::gpu::GpuWeights::upload(ctx, &rnn.weights).unwrap();
        let x = ctx.upload(&self.input_for(rnn)).unwrap();
        let up = |t: &Option<Tensor<f32>>| t.as_ref().map(|t| ctx.upload(t).unwrap());
        let (h0, c0) = (up(&self.h0), up(&self.c0));
        let mut input = wgrnn::gpu::GpuRnnInput::new(&x).lengths(&self.lengths);
        input.h0 = h0.as_ref();
        input.c0 = c0.as_ref();
        let out = wgrnn::gpu::rnn_forward(ctx, &gw, input).unwrap();
        let out = Outputs {
            y: ctx.read(&out.y).unwrap(),
            h_n: ctx.read(&out.h_n).unwrap(),
            c_n: out.c_n.as_ref().map(|c| ctx.read(c).unwrap()),
        };
        Self::output_of(rnn, &self.lengths, out)
    }
}

fn check_outputs(what: &str, got: &Outputs, file: &SafetensorsFile) {
    let t = |n: &str| file.real::<f32>(n).unwrap();
    assert_tensor_close(&format!("{what}: y"), &got.y, &t("y"), FRAMEWORK);
    assert_tensor_close(&format!("{what}: h_n"), &got.h_n, &t("h_n"), FRAMEWORK);
    match &got.c_n {
        Some(c_n) => assert_tensor_close(&format!("{what}: c_n"), c_n, &t("c_n"), FRAMEWORK),
        None => assert!(
            !file.tensors.contains_key("c_n"),
            "{what}: c_n not computed"
        ),
    }
}

#[test]
fn cpu_matches_onnxruntime_on_every_onnx_fixture() {
    for (name, modules, file) in onnx_cases() {
        let rnn = the_rnn(&name, &modules, &file);
        check_outputs(
            &format!("{name} cpu"),
            &Run::from_file(&file).cpu(rnn),
            &file,
        );
    }
}

#[test]
fn gpu_matches_onnxruntime_on_every_onnx_fixture() {
    let _watch = crate::validation::watch();
    for (name, modules, file) in onnx_cases() {
        let rnn = the_rnn(&name, &modules, &file);
        check_outputs(
            &format!("{name} gpu"),
            &Run::from_file(&file).gpu(rnn),
            &file,
        );
    }
}

/// The gate orders are what the fixtures test through the outputs; this pins the names: the
/// exported 2-layer bidirectional LSTM holds exactly PyTorch's `state_dict` names.
#[test]
fn an_exported_stack_holds_pytorchs_names() {
    let path = fixtures("onnx").join("torch_lstm_2layer_bidir.onnx");
    let modules = wgrnn::import::onnx::read(path).unwrap();
    let Layer::Rnn(rnn) = &modules[0].layer else {
        panic!("not recurrent")
    };
    let mut names = rnn.weights.names();
    names.sort();
    let mut want = Vec::new();
    for l in 0..2 {
        for sfx in ["", "_reverse"] {
            for p in ["weight_ih", "weight_hh", "bias_ih", "bias_hh"] {
                want.push(format!("{p}_l{l}{sfx}"));
            }
        }
    }
    want.sort();
    assert_eq!(names, want);
    assert_eq!(rnn.weights.config().cell, CellKind::Lstm);
    assert_eq!(rnn.weights.config().gru_reset, GruReset::After);
}

/// Where a Keras model's layers run.
#[derive(Clone, Copy, Debug)]
enum On {
    Cpu,
    Gpu,
}

/// What flows between a Keras model's layers: token ids, a sequence `[B, T, F]` with the
/// lengths its mask means, or one vector per row `[B, F]`.
enum Flow {
    Ids(Tensor<i64>),
    Seq(Tensor<f32>, Option<Vec<usize>>),
    Rows(Tensor<f32>),
}

/// Keras's activations of the fixtures' Dense layers, applied on the host.
fn activate(name: &str, mut t: Tensor<f32>) -> Tensor<f32> {
    let f: fn(f32) -> f32 = match name {
        "linear" => |v| v,
        "sigmoid" => |v| 1.0 / (1.0 + (-v).exp()),
        "tanh" => f32::tanh,
        "relu" => |v| v.max(0.0),
        other => panic!("no host activation {other} in the test"),
    };
    t.data_mut().iter_mut().for_each(|v| *v = f(*v));
    t
}

/// The top layer's last `h` of both directions, `[B, D·H]` (forward then backward, as Keras's
/// `Bidirectional` concatenates them), from `h_n` `[L·D, B, H]`.
fn last_states(h_n: &Tensor<f32>, dirs: usize) -> Tensor<f32> {
    let &[ld, b, h] = h_n.shape() else {
        panic!("h_n rank")
    };
    let top = &h_n.data()[(ld - dirs) * b * h..];
    Tensor::from_fn(vec![b, dirs * h], |i| {
        let (row, col) = (i / (dirs * h), i % (dirs * h));
        top[(col / h) * b * h + row * h + col % h]
    })
    .unwrap()
}

fn embed(on: On, m: &wgrnn::import::EmbeddingModule, ids: &Tensor<i64>) -> Tensor<f32> {
    match on {
        On::Cpu => wgrnn::cpu::embedding_forward(&m.weights, ids).unwrap(),
        On::Gpu => {
            let ctx = crate::gpu::ctx();
            let gw = wgrnn::gpu::GpuWeights::upload(ctx, &m.weights).unwrap();
            let vocab = m.weights.config().num_embeddings;
            let gids = wgrnn::gpu::upload_ids(ctx, ids, vocab).unwrap();
            ctx.read(&wgrnn::gpu::embedding_forward(ctx, &gw, &gids).unwrap())
                .unwrap()
        }
    }
}

fn dense(on: On, m: &wgrnn::import::LinearModule, x: &Tensor<f32>) -> Tensor<f32> {
    let y = match on {
        On::Cpu => wgrnn::cpu::linear_forward(&m.weights, x).unwrap(),
        On::Gpu => {
            let ctx = crate::gpu::ctx();
            let gw = wgrnn::gpu::GpuWeights::upload(ctx, &m.weights).unwrap();
            let gx = ctx.upload(x).unwrap();
            ctx.read(&wgrnn::gpu::linear_forward(ctx, &gw, &gx).unwrap())
                .unwrap()
        }
    };
    activate(&m.activation, y)
}

/// Runs a Keras model's modules in order, as the model does at inference.
fn run_keras(on: On, modules: &[Module], input: Flow) -> Tensor<f32> {
    let mut flow = input;
    for m in modules {
        flow = match (&m.layer, flow) {
            (Layer::Embedding(e), Flow::Ids(ids)) => {
                let lengths = e
                    .mask_zero
                    .then(|| wgrnn::import::keras::lengths_from_mask(&ids).unwrap());
                Flow::Seq(embed(on, e, &ids), lengths)
            }
            (Layer::Rnn(r), Flow::Seq(x, lengths)) => {
                let steps = x.shape()[1];
                let run = Run {
                    lengths: lengths.clone().unwrap_or_else(|| vec![steps; x.shape()[0]]),
                    x,
                    h0: None,
                    c0: None,
                };
                let out = match on {
                    On::Cpu => run.cpu(r),
                    On::Gpu => run.gpu(r),
                };
                if r.return_sequences {
                    Flow::Seq(out.y, lengths)
                } else {
                    Flow::Rows(last_states(&out.h_n, r.weights.config().num_directions()))
                }
            }
            (Layer::Linear(l), Flow::Seq(x, lengths)) => Flow::Seq(dense(on, l, &x), lengths),
            (Layer::Linear(l), Flow::Rows(x)) => Flow::Rows(dense(on, l, &x)),
            _ => panic!("{}: the test's pipeline cannot feed this module", m.name),
        };
    }
    match flow {
        Flow::Seq(y, _) | Flow::Rows(y) => y,
        Flow::Ids(_) => panic!("the model computes nothing"),
    }
}

/// Every `.keras` file with Keras's outputs beside it, imported.
fn keras_cases() -> Vec<(String, Vec<Module>, SafetensorsFile)> {
    let cases: Vec<_> = files_with("keras_models", "keras")
        .into_iter()
        .filter_map(|(name, path)| {
            let io = path.with_extension("safetensors");
            io.exists().then(|| {
                let modules =
                    wgrnn::import::keras::read(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
                let file = SafetensorsFile::read(&io).unwrap_or_else(|e| panic!("{name}: {e}"));
                (name, modules, file)
            })
        })
        .collect();
    assert!(
        cases.len() >= 7,
        "expected the 7 shipped Keras models, found {}",
        cases.len()
    );
    cases
}

/// The modules found are the ones the oracle script lists (`expect.modules`,
/// `expect.rnn.<name>`).
fn check_keras_modules(name: &str, modules: &[Module], file: &SafetensorsFile) {
    let kinds: Vec<String> = modules
        .iter()
        .map(|m| {
            let kind = match &m.layer {
                Layer::Rnn(_) => "rnn",
                Layer::Embedding(_) => "embedding",
                Layer::Linear(_) => "linear",
            };
            format!("{kind}:{}", m.name)
        })
        .collect();
    assert_eq!(
        kinds.join(","),
        meta(name, file, "expect.modules"),
        "{name}: modules"
    );
    for m in modules {
        let Layer::Rnn(r) = &m.layer else { continue };
        let c = r.weights.config();
        let got = format!(
            "{},{},{},{},{},{}",
            c.cell.name(),
            c.num_layers,
            c.bidirectional,
            c.gru_reset.name(),
            c.bias,
            r.return_sequences
        );
        let want = meta(name, file, &format!("expect.rnn.{}", m.name));
        assert_eq!(got, want, "{name}: module {}", m.name);
    }
}

fn keras_input(file: &SafetensorsFile) -> Flow {
    if file.tensors.contains_key("ids") {
        Flow::Ids(file.ids("ids").unwrap())
    } else {
        Flow::Seq(file.real("x").unwrap(), None)
    }
}

#[test]
fn cpu_matches_keras_on_every_keras_model() {
    for (name, modules, file) in keras_cases() {
        check_keras_modules(&name, &modules, &file);
        let got = run_keras(On::Cpu, &modules, keras_input(&file));
        let want = file.real::<f32>("out").unwrap();
        assert_tensor_close(&format!("{name} cpu: out"), &got, &want, FRAMEWORK);
    }
}

#[test]
fn gpu_matches_keras_on_every_keras_model() {
    let _watch = crate::validation::watch();
    for (name, modules, file) in keras_cases() {
        let got = run_keras(On::Gpu, &modules, keras_input(&file));
        let want = file.real::<f32>("out").unwrap();
        assert_tensor_close(&format!("{name} gpu: out"), &got, &want, FRAMEWORK);
    }
}

/// The config a `<name>.config` entry describes, read as a user would read it.
fn rnn_config_from_json(v: &serde_json::Value) -> wgrnn::RnnConfig {
    let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}")) as usize;
    let b = |k: &str| v[k].as_bool().unwrap_or_else(|| panic!("{k} in {v}"));
    wgrnn::RnnConfig::new(
        CellKind::from_name(v["cell"].as_str().unwrap()).unwrap(),
        n("input_size"),
        n("hidden_size"),
    )
    .layers(n("num_layers"))
    .bidirectional(b("bidirectional"))
    .batch_first(b("batch_first"))
    .bias(b("bias"))
    .gru_reset(GruReset::from_name(v["gru_reset"].as_str().unwrap()).unwrap())
    .proj_size(n("proj_size"))
}

/// Loads module `m` back from the example's file at `out` under its prefix, by the config its
/// `<name>.config` entry describes, and checks the entry's keys.
fn check_loads(m: &Module, file: &SafetensorsFile, out: &Path, what: &str) {
    use wgrnn::core::{EmbeddingWeights, LinearWeights, LoadOptions, RnnWeights};
    let text = file
        .meta(&format!("{}.config", m.name))
        .expect("config metadata");
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    let opts = LoadOptions::with_prefix(format!("{}.", m.name));
    match &m.layer {
        Layer::Rnn(r) => {
            let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
            keys.sort();
            let want = [
                "batch_first",
                "bias",
                "bidirectional",
                "cell",
                "gru_reset",
                "hidden_size",
                "input_size",
                "module",
                "num_layers",
                "proj_size",
                "return_sequences",
                "reverse",
            ];
            assert_eq!(keys, want, "{what}");
            let loaded = RnnWeights::<f32>::load(rnn_config_from_json(&v), out, &opts).unwrap();
            assert_eq!(&loaded, &r.weights, "{what}");
        }
        Layer::Embedding(e) => {
            let cfg = e.weights.config().clone();
            let loaded = EmbeddingWeights::<f32>::load(cfg, out, &opts).unwrap();
            assert_eq!(&loaded, &e.weights, "{what}");
            assert_eq!(v["mask_zero"], e.mask_zero, "{what}");
        }
        Layer::Linear(l) => {
            let cfg = l.weights.config().clone();
            let loaded = LinearWeights::<f32>::load(cfg, out, &opts).unwrap();
            assert_eq!(&loaded, &l.weights, "{what}");
            assert_eq!(v["activation"], l.activation.as_str(), "{what}");
        }
    }
}

/// The example's file: every module's tensors under `<name>.`, its config under
/// `<name>.config` with the documented keys, loadable with `LoadOptions::with_prefix`.
#[test]
fn the_import_examples_file_loads_each_module_under_its_prefix() {
    let dir = std::env::temp_dir().join(format!("wgrnn-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for model in [
        fixtures("onnx").join("torch_lstm_2layer_bidir.onnx"),
        fixtures("onnx").join("gru_reset_before.onnx"),
        fixtures("keras_models").join("embed_bilstm_dense.keras"),
    ] {
        let modules = crate::import_file::read(&model).unwrap();
        let out = dir.join("out.safetensors");
        crate::import_file::to_file(&modules)
            .unwrap()
            .write(&out)
            .unwrap();
        let file = SafetensorsFile::read(&out).unwrap();
        for m in &modules {
            check_loads(m, &file, &out, &format!("{}: {}", model.display(), m.name));
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// One line per module, and the example's own refusals.
#[test]
fn the_import_example_describes_each_module_and_refuses_other_files() {
    let lines = |path: PathBuf| -> Vec<String> {
        let modules = crate::import_file::read(&path).unwrap();
        modules.iter().map(crate::import_file::describe).collect()
    };
    assert_eq!(
        lines(fixtures("onnx").join("torch_lstm_2layer_bidir.onnx")),
        ["rnn: lstm input_size 3 hidden_size 4 num_layers 2 bidirectional, sequence-major"]
    );
    assert_eq!(
        lines(fixtures("keras_models").join("embed_bilstm_dense.keras")),
        [
            "embedding: embedding 20 x 6, mask_zero",
            "bidirectional: lstm input_size 6 hidden_size 5 num_layers 1 bidirectional, \
             batch_first, last step only",
            "dense: linear 10 -> 3, activation linear",
        ]
    );
    let e = crate::import_file::read(Path::new("model.h5")).unwrap_err();
    assert!(
        e.to_string().contains("neither an .onnx nor a .keras file"),
        "{e}"
    );
    let e = crate::import_file::to_file(&[]).unwrap_err();
    assert!(e.to_string().contains("holds no LSTM"), "{e}");
}
