//! Every fixture in `tests/fixtures/keras` (Keras 3 on JAX, PyTorch names) and
//! `tests/fixtures/pytorch` (PyTorch in float64: the LSTM projection, the reset-before GRU), in
//! one format (see their READMEs), matched by the f32 CPU reference and the GPU. The case is
//! read from each file's metadata, so a new file dropped into either directory is tested with
//! no code change.

use std::path::{Path, PathBuf};

use wgrnn::core::{AttentionWeights, EmbeddingWeights, LoadOptions, RnnWeights, SafetensorsFile};
use wgrnn::cpu::{
    AttentionInput, RnnInput, RnnOutputGrads, attention_backward, attention_forward,
    embedding_backward, embedding_forward, rnn_backward, rnn_forward, rnn_forward_train,
};
use wgrnn::{AttentionConfig, CellKind, EmbeddingConfig, GruReset, RnnConfig, Score};

use crate::common::{F32_FORWARD, F32_GRAD, assert_tensor_close};

pub fn fixture_dir() -> PathBuf {
    source_dir(KERAS)
}

/// The fixture sets: the directory under `tests/fixtures` of each oracle.
const KERAS: &str = "keras";
const PYTORCH: &str = "pytorch";

fn source_dir(source: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(source)
}

/// Every `.safetensors` fixture of `source`, sorted by name.
fn fixtures_of(source: &str) -> Vec<(String, SafetensorsFile)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(source_dir(source))
        .expect("fixture directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let file = SafetensorsFile::read(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, file)
        })
        .collect()
}

pub fn meta<'a>(name: &str, file: &'a SafetensorsFile, key: &str) -> &'a str {
    file.meta(key)
        .unwrap_or_else(|| panic!("{name}: metadata `{key}` missing"))
}

pub fn meta_usize(name: &str, file: &SafetensorsFile, key: &str) -> usize {
    meta(name, file, key)
        .parse()
        .unwrap_or_else(|e| panic!("{name}: metadata `{key}`: {e}"))
}

/// The recurrent config a fixture describes.
pub fn rnn_config(name: &str, file: &SafetensorsFile) -> RnnConfig {
    let cell = CellKind::from_name(meta(name, file, "cell"))
        .unwrap_or_else(|| panic!("{name}: unknown cell"));
    let layout = file.meta("layout").unwrap_or("seq_major");
    assert!(
        layout == "seq_major" || layout == "batch_major",
        "{name}: unknown layout {layout}"
    );
    RnnConfig::new(
        cell,
        meta_usize(name, file, "input_size"),
        meta_usize(name, file, "hidden_size"),
    )
    .layers(meta_usize(name, file, "num_layers"))
    .bidirectional(meta(name, file, "bidirectional") == "true")
    .batch_first(layout == "batch_major")
    .proj_size(
        file.meta("proj_size")
            .map_or(0, |_| meta_usize(name, file, "proj_size")),
    )
    .gru_reset(
        GruReset::from_name(file.meta("gru_reset").unwrap_or("after"))
            .unwrap_or_else(|| panic!("{name}: unknown gru_reset")),
    )
}

pub fn lengths(file: &SafetensorsFile, name: &str) -> Vec<usize> {
    file.ids(name)
        .unwrap()
        .data()
        .iter()
        .map(|&l| l as usize)
        .collect()
}

fn check_rnn_cpu(name: &str, file: &SafetensorsFile) {
    let cfg = rnn_config(name, file);
    // Weights go through the public loader, with the fixture's other tensors beside them.
    let w = RnnWeights::<f32>::from_file(cfg.clone(), file, &LoadOptions::non_strict()).unwrap();
    let x = file.real::<f32>("x").unwrap();
    let h0 = file.real::<f32>("h0").unwrap();
    let c0 = cfg
        .cell
        .has_cell_state()
        .then(|| file.real::<f32>("c0").unwrap());
    let lens = lengths(file, "lengths");
    let mut input = RnnInput::new(&x).h0(&h0).lengths(&lens);
    if let Some(c0) = &c0 {
        input = input.c0(c0);
    }
    let (out, tape) = rnn_forward_train(&w, input).unwrap();
    let t = |n: &str| file.real::<f32>(n).unwrap();
    assert_tensor_close(&format!("{name}: y"), &out.y, &t("y"), F32_FORWARD);
    assert_tensor_close(&format!("{name}: h_n"), &out.h_n, &t("h_n"), F32_FORWARD);
    if let Some(c_n) = &out.c_n {
        assert_tensor_close(&format!("{name}: c_n"), c_n, &t("c_n"), F32_FORWARD);
    }
    // Inference mode gives the same values as training mode.
    assert_eq!(
        rnn_forward(&w, input).unwrap(),
        out,
        "{name}: inference differs from training"
    );

    let (dy, dh_n) = (t("dy"), t("dh_n"));
    let dc_n = cfg.cell.has_cell_state().then(|| t("dc_n"));
    let g = rnn_backward(
        &w,
        &tape,
        RnnOutputGrads {
            dy: Some(&dy),
            dh_n: Some(&dh_n),
            dc_n: dc_n.as_ref(),
        },
    )
    .unwrap();
    assert_tensor_close(&format!("{name}: grad.x"), &g.dx, &t("grad.x"), F32_GRAD);
    assert_tensor_close(&format!("{name}: grad.h0"), &g.dh0, &t("grad.h0"), F32_GRAD);
    if let Some(dc0) = &g.dc0 {
        assert_tensor_close(&format!("{name}: grad.c0"), dc0, &t("grad.c0"), F32_GRAD);
    }
    for pname in g.weights.names() {
        let got = g.weights.get(&pname).unwrap();
        assert_tensor_close(
            &format!("{name}: grad.{pname}"),
            got,
            &t(&format!("grad.{pname}")),
            F32_GRAD,
        );
    }
}

/// The embedding config a fixture describes.
pub fn embedding_config(name: &str, file: &SafetensorsFile) -> EmbeddingConfig {
    EmbeddingConfig::new(
        meta_usize(name, file, "vocab"),
        meta_usize(name, file, "dim"),
    )
}

fn check_embedding_cpu(name: &str, file: &SafetensorsFile) {
    let w = EmbeddingWeights::<f32>::from_file(
        embedding_config(name, file),
        file,
        &LoadOptions::non_strict(),
    )
    .unwrap();
    let ids = file.ids("ids").unwrap();
    let t = |n: &str| file.real::<f32>(n).unwrap();
    let y = embedding_forward(&w, &ids).unwrap();
    assert_tensor_close(&format!("{name}: y"), &y, &t("y"), F32_FORWARD);
    let g = embedding_backward(&w, &ids, &t("dy")).unwrap();
    assert_tensor_close(
        &format!("{name}: grad.weight"),
        g.get("weight").unwrap(),
        &t("grad.weight"),
        F32_GRAD,
    );
}

/// The attention config a fixture describes (query, key and value share `dim`).
pub fn attention_config(name: &str, file: &SafetensorsFile) -> AttentionConfig {
    let score = Score::from_name(meta(name, file, "score"))
        .unwrap_or_else(|| panic!("{name}: unknown score"));
    let d = meta_usize(name, file, "dim");
    let mut cfg = AttentionConfig::new(score, d);
    if let Some(a) = file.meta("attn_dim") {
        cfg.attn_size = a.parse().unwrap();
    }
    cfg
}

fn check_attention_cpu(name: &str, file: &SafetensorsFile) {
    let cfg = attention_config(name, file);
    let w = AttentionWeights::<f32>::from_file(cfg, file, &LoadOptions::non_strict()).unwrap();
    let t = |n: &str| file.real::<f32>(n).unwrap();
    let (q, k, v) = (t("query"), t("key"), t("value"));
    let lens = lengths(file, "key_lengths");
    let input = AttentionInput::new(&q, &k, &v).key_lengths(&lens);
    let out = attention_forward(&w, input).unwrap();
    assert_tensor_close(
        &format!("{name}: output"),
        &out.context,
        &t("output"),
        F32_FORWARD,
    );
    assert_tensor_close(
        &format!("{name}: weights"),
        &out.weights,
        &t("weights"),
        F32_FORWARD,
    );
    let g = attention_backward(&w, input, &out, &t("d_output"), None).unwrap();
    assert_tensor_close(
        &format!("{name}: grad.query"),
        &g.dquery,
        &t("grad.query"),
        F32_GRAD,
    );
    assert_tensor_close(
        &format!("{name}: grad.key"),
        &g.dkey,
        &t("grad.key"),
        F32_GRAD,
    );
    assert_tensor_close(
        &format!("{name}: grad.value"),
        &g.dvalue,
        &t("grad.value"),
        F32_GRAD,
    );
    for pname in g.weights.names() {
        let got = g.weights.get(&pname).unwrap();
        assert_tensor_close(
            &format!("{name}: grad.{pname}"),
            got,
            &t(&format!("grad.{pname}")),
            F32_GRAD,
        );
    }
}

#[test]
fn cpu_matches_every_keras_fixture() {
    cpu_matches_every_fixture_of(KERAS, 11);
}

#[test]
fn cpu_matches_every_pytorch_fixture() {
    cpu_matches_every_fixture_of(PYTORCH, 5);
}

fn cpu_matches_every_fixture_of(source: &str, shipped: usize) {
    let cases = fixtures_of(source);
    assert!(
        cases.len() >= shipped,
        "expected the {shipped} shipped {source} fixtures, found {}",
        cases.len()
    );
    for (name, file) in &cases {
        match meta(name, file, "kind") {
            "rnn" => check_rnn_cpu(name, file),
            "embedding" => check_embedding_cpu(name, file),
            "attention" => check_attention_cpu(name, file),
            kind => panic!("{name}: unknown fixture kind {kind}"),
        }
    }
}

fn check_rnn_gpu(name: &str, file: &SafetensorsFile) {
    let ctx = crate::gpu::ctx();
    let cfg = rnn_config(name, file);
    let w = RnnWeights::<f32>::from_file(cfg.clone(), file, &LoadOptions::non_strict()).unwrap();
    let gw = wgrnn::gpu::GpuWeights::upload(ctx, &w).unwrap();
    let t = |n: &str| file.real::<f32>(n).unwrap();
    let (x, h0) = (ctx.upload(&t("x")).unwrap(), ctx.upload(&t("h0")).unwrap());
    let c0 = cfg
        .cell
        .has_cell_state()
        .then(|| ctx.upload(&t("c0")).unwrap());
    let lens = lengths(file, "lengths");
    let mut input = wgrnn::gpu::GpuRnnInput::new(&x).h0(&h0).lengths(&lens);
    input.c0 = c0.as_ref();
    for training in [false, true] {
        let out = if training {
            wgrnn::gpu::rnn_forward_train(ctx, &gw, input).unwrap().0
        } else {
            wgrnn::gpu::rnn_forward(ctx, &gw, input).unwrap()
        };
        assert_tensor_close(
            &format!("{name} gpu: y"),
            &ctx.read(&out.y).unwrap(),
            &t("y"),
            F32_FORWARD,
        );
        assert_tensor_close(
            &format!("{name} gpu: h_n"),
            &ctx.read(&out.h_n).unwrap(),
            &t("h_n"),
            F32_FORWARD,
        );
        if let Some(c_n) = &out.c_n {
            assert_tensor_close(
                &format!("{name} gpu: c_n"),
                &ctx.read(c_n).unwrap(),
                &t("c_n"),
                F32_FORWARD,
            );
        }
    }
}

fn check_embedding_gpu(name: &str, file: &SafetensorsFile) {
    let ctx = crate::gpu::ctx();
    let cfg = embedding_config(name, file);
    let w =
        EmbeddingWeights::<f32>::from_file(cfg.clone(), file, &LoadOptions::non_strict()).unwrap();
    let gw = wgrnn::gpu::GpuWeights::upload(ctx, &w).unwrap();
    let ids = wgrnn::gpu::upload_ids(ctx, &file.ids("ids").unwrap(), cfg.num_embeddings).unwrap();
    let t = |n: &str| file.real::<f32>(n).unwrap();
    let y = wgrnn::gpu::embedding_forward(ctx, &gw, &ids).unwrap();
    assert_tensor_close(
        &format!("{name} gpu: y"),
        &ctx.read(&y).unwrap(),
        &t("y"),
        F32_FORWARD,
    );
    let dy = ctx.upload(&t("dy")).unwrap();
    let g = wgrnn::gpu::embedding_backward(ctx, &gw, &ids, &dy, None).unwrap();
    let got = ctx.read(g.get("weight").unwrap()).unwrap();
    assert_tensor_close(
        &format!("{name} gpu: grad.weight"),
        &got,
        &t("grad.weight"),
        F32_GRAD,
    );
}

fn check_attention_gpu(name: &str, file: &SafetensorsFile) {
    let ctx = crate::gpu::ctx();
    let w = AttentionWeights::<f32>::from_file(
        attention_config(name, file),
        file,
        &LoadOptions::non_strict(),
    )
    .unwrap();
    let gw = wgrnn::gpu::GpuWeights::upload(ctx, &w).unwrap();
    let t = |n: &str| file.real::<f32>(n).unwrap();
    let up = |n: &str| ctx.upload(&t(n)).unwrap();
    let (q, k, v) = (up("query"), up("key"), up("value"));
    let lens = lengths(file, "key_lengths");
    let input = wgrnn::gpu::GpuAttentionInput::new(&q, &k, &v).key_lengths(&lens);
    let out = wgrnn::gpu::attention_forward(ctx, &gw, input).unwrap();
    assert_tensor_close(
        &format!("{name} gpu: output"),
        &ctx.read(&out.context).unwrap(),
        &t("output"),
        F32_FORWARD,
    );
    assert_tensor_close(
        &format!("{name} gpu: weights"),
        &ctx.read(&out.weights).unwrap(),
        &t("weights"),
        F32_FORWARD,
    );
    let g =
        wgrnn::gpu::attention_backward(ctx, &gw, input, &out, &up("d_output"), None, None).unwrap();
    assert_tensor_close(
        &format!("{name} gpu: grad.query"),
        &ctx.read(&g.dquery).unwrap(),
        &t("grad.query"),
        F32_GRAD,
    );
    assert_tensor_close(
        &format!("{name} gpu: grad.key"),
        &ctx.read(&g.dkey).unwrap(),
        &t("grad.key"),
        F32_GRAD,
    );
    assert_tensor_close(
        &format!("{name} gpu: grad.value"),
        &ctx.read(&g.dvalue).unwrap(),
        &t("grad.value"),
        F32_GRAD,
    );
    let gp = g.weights.read(ctx).unwrap();
    for p in gp.names() {
        assert_tensor_close(
            &format!("{name} gpu: grad.{p}"),
            gp.get(&p).unwrap(),
            &t(&format!("grad.{p}")),
            F32_GRAD,
        );
    }
}

#[test]
fn gpu_matches_every_keras_fixture() {
    let _watch = crate::validation::watch();
    gpu_matches_every_fixture_of(KERAS);
}

#[test]
fn gpu_matches_every_pytorch_fixture() {
    let _watch = crate::validation::watch();
    gpu_matches_every_fixture_of(PYTORCH);
}

fn gpu_matches_every_fixture_of(source: &str) {
    for (name, file) in &fixtures_of(source) {
        match meta(name, file, "kind") {
            "rnn" => check_rnn_gpu(name, file),
            "embedding" => check_embedding_gpu(name, file),
            "attention" => check_attention_gpu(name, file),
            kind => panic!("{name}: unknown fixture kind {kind}"),
        }
    }
}

/// The GPU backward against every recurrent fixture's `grad.*` tensors.
#[test]
fn gpu_gradients_match_every_keras_rnn_fixture() {
    let _watch = crate::validation::watch();
    gpu_gradients_match_every_rnn_fixture_of(KERAS);
}

#[test]
fn gpu_gradients_match_every_pytorch_rnn_fixture() {
    let _watch = crate::validation::watch();
    gpu_gradients_match_every_rnn_fixture_of(PYTORCH);
}

fn gpu_gradients_match_every_rnn_fixture_of(source: &str) {
    let ctx = crate::gpu::ctx();
    for (name, file) in fixtures_of(source)
        .iter()
        .filter(|(n, f)| meta(n, f, "kind") == "rnn")
    {
        let cfg = rnn_config(name, file);
        let w =
            RnnWeights::<f32>::from_file(cfg.clone(), file, &LoadOptions::non_strict()).unwrap();
        let gw = wgrnn::gpu::GpuWeights::upload(ctx, &w).unwrap();
        let t = |n: &str| file.real::<f32>(n).unwrap();
        let up = |n: &str| ctx.upload(&t(n)).unwrap();
        let (x, h0, dy, dh_n) = (up("x"), up("h0"), up("dy"), up("dh_n"));
        let lstm = cfg.cell.has_cell_state();
        let (c0, dc_n) = (lstm.then(|| up("c0")), lstm.then(|| up("dc_n")));
        let lens = lengths(file, "lengths");
        let mut input = wgrnn::gpu::GpuRnnInput::new(&x).h0(&h0).lengths(&lens);
        input.c0 = c0.as_ref();
        let (_, out_tape) = wgrnn::gpu::rnn_forward_train(ctx, &gw, input).unwrap();
        let upstream = wgrnn::gpu::GpuRnnOutputGrads {
            dy: Some(&dy),
            dh_n: Some(&dh_n),
            dc_n: dc_n.as_ref(),
        };
        let g = wgrnn::gpu::rnn_backward(ctx, &gw, &out_tape, upstream, None).unwrap();
        assert_tensor_close(
            &format!("{name} gpu: grad.x"),
            &ctx.read(&g.dx).unwrap(),
            &t("grad.x"),
            F32_GRAD,
        );
        assert_tensor_close(
            &format!("{name} gpu: grad.h0"),
            &ctx.read(&g.dh0).unwrap(),
            &t("grad.h0"),
            F32_GRAD,
        );
        if let Some(dc0) = &g.dc0 {
            assert_tensor_close(
                &format!("{name} gpu: grad.c0"),
                &ctx.read(dc0).unwrap(),
                &t("grad.c0"),
                F32_GRAD,
            );
        }
        let gw_host = g.weights.read(ctx).unwrap();
        for p in gw_host.names() {
            assert_tensor_close(
                &format!("{name} gpu: grad.{p}"),
                gw_host.get(&p).unwrap(),
                &t(&format!("grad.{p}")),
                F32_GRAD,
            );
        }
    }
}
