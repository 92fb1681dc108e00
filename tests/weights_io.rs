//! Weight sets through safetensors: round trips, PyTorch names, prefixes, dtypes, and the errors
//! of a bad file.

use std::collections::BTreeSet;

use wgrnn::core::{LoadOptions, LoadReport, RnnWeights, SafetensorsFile, StoredTensor, TensorMap};
use wgrnn::cpu::{RnnInput, rnn_forward};
use wgrnn::{CellKind, Error, RnnConfig, Tensor};

use crate::common::{F32_FORWARD, assert_tensor_close};
use crate::keras::{fixture_dir, rnn_config};

fn lstm() -> RnnConfig {
    RnnConfig::new(CellKind::Lstm, 3, 4)
        .layers(2)
        .bidirectional(true)
}

#[test]
fn round_trip_through_bytes_and_files() {
    let w = RnnWeights::<f32>::init(lstm(), 7).unwrap();
    let bytes = w.to_safetensors().unwrap();
    assert_eq!(
        RnnWeights::<f32>::from_safetensors(lstm(), &bytes, &LoadOptions::strict()).unwrap(),
        w
    );
    // f32 on disk read as f64 is exact.
    let w64 = RnnWeights::<f64>::from_safetensors(lstm(), &bytes, &LoadOptions::strict()).unwrap();
    assert_eq!(w64, w.cast::<f64>());
    let path = std::env::temp_dir().join(format!(
        "wgrnn-roundtrip-{}.safetensors",
        std::process::id()
    ));
    w.save(&path).unwrap();
    let back = RnnWeights::<f32>::load(lstm(), &path, &LoadOptions::strict());
    std::fs::remove_file(&path).unwrap();
    assert_eq!(back.unwrap(), w);
}

#[test]
fn files_carry_exactly_the_pytorch_state_dict() {
    let w = RnnWeights::<f32>::init(lstm(), 1).unwrap();
    let file = SafetensorsFile::from_bytes(&w.to_safetensors().unwrap()).unwrap();
    let mut want = BTreeSet::new();
    for sfx in ["_l0", "_l0_reverse", "_l1", "_l1_reverse"] {
        for n in ["weight_ih", "weight_hh", "bias_ih", "bias_hh"] {
            want.insert(format!("{n}{sfx}"));
        }
    }
    assert_eq!(file.tensors.keys().cloned().collect::<BTreeSet<_>>(), want);
    let shape = |n: &str| file.tensors[n].shape.clone();
    assert_eq!(shape("weight_ih_l0"), [16, 3]);
    assert_eq!(shape("weight_ih_l1_reverse"), [16, 8]);
    assert_eq!(shape("weight_hh_l1"), [16, 4]);
    assert_eq!(shape("bias_hh_l0_reverse"), [16]);
    assert!(
        file.tensors
            .values()
            .all(|t| t.dtype == safetensors::Dtype::F32)
    );
    // PyTorch's init: U(-1/sqrt(H), 1/sqrt(H)), and a seed gives the same weights every time.
    let bound = 1.0 / 2.0;
    assert!(
        w.tensors()
            .values()
            .flat_map(|t| t.data())
            .all(|v| v.abs() <= bound)
    );
    assert_eq!(w, RnnWeights::<f32>::init(lstm(), 1).unwrap());
    assert_ne!(w, RnnWeights::<f32>::init(lstm(), 2).unwrap());
}

#[test]
fn a_fixture_loads_through_the_public_loader() {
    let path = fixture_dir().join("lstm_2layer_bidir.safetensors");
    let file = SafetensorsFile::read(&path).unwrap();
    let cfg = rnn_config("lstm_2layer_bidir", &file);
    let w = RnnWeights::<f32>::load(cfg.clone(), &path, &LoadOptions::non_strict()).unwrap();
    assert_eq!(w.names().len(), 16);
    for name in w.names() {
        assert_eq!(
            w.get(&name).unwrap(),
            &file.real::<f32>(&name).unwrap(),
            "{name}"
        );
    }
    // The fixture also holds x, y, grads…: strict loading (the default) refuses them, by name.
    let err = RnnWeights::<f32>::load(cfg, &path, &LoadOptions::default()).unwrap_err();
    assert!(
        matches!(&err, Error::IncompatibleKeys { missing, unexpected, .. }
            if missing.is_empty() && unexpected.iter().any(|n| n == "x")),
        "{err}"
    );
}

#[test]
fn prefixes_pick_one_module_out_of_a_model_state_dict() {
    let enc = RnnWeights::<f32>::init(lstm(), 3).unwrap();
    let dec = RnnWeights::<f32>::init(RnnConfig::new(CellKind::Gru, 5, 4), 4).unwrap();
    let mut file = SafetensorsFile::default();
    for (n, t) in enc.tensors() {
        file.insert_real(format!("encoder.rnn.{n}"), t);
    }
    for (n, t) in dec.tensors() {
        file.insert_real(format!("decoder.rnn.{n}"), t);
    }
    file.insert_ids("tokens", &Tensor::new([2], vec![1, 2]).unwrap());
    let bytes = file.to_bytes().unwrap();
    let opts = LoadOptions {
        prefix: "encoder.rnn.".into(),
        strict: true,
    };
    assert_eq!(
        RnnWeights::<f32>::from_safetensors(lstm(), &bytes, &opts).unwrap(),
        enc
    );
    let got = RnnWeights::<f32>::from_safetensors(
        dec.config().clone(),
        &bytes,
        &LoadOptions::with_prefix("decoder.rnn."),
    )
    .unwrap();
    assert_eq!(got, dec);
}

#[test]
fn half_precision_files_load_as_f32() {
    let w = RnnWeights::<f32>::init(RnnConfig::new(CellKind::RnnTanh, 2, 2), 5).unwrap();
    let mut file = SafetensorsFile::default();
    for (n, t) in w.tensors() {
        let bytes = t
            .data()
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect();
        file.tensors.insert(
            n.clone(),
            StoredTensor {
                dtype: safetensors::Dtype::F16,
                shape: t.shape().to_vec(),
                bytes,
            },
        );
    }
    let got =
        RnnWeights::<f32>::from_file(w.config().clone(), &file, &LoadOptions::strict()).unwrap();
    for (n, t) in w.tensors() {
        for (a, b) in got.get(n).unwrap().data().iter().zip(t.data()) {
            // f16 has an 11-bit significand: relative rounding ≤ 2^-11.
            assert!((a - b).abs() <= b.abs() * 2f32.powi(-11), "{n}: {a} vs {b}");
        }
    }
}

#[test]
fn missing_misshaped_and_mistyped_tensors_are_named() {
    let w = RnnWeights::<f32>::init(lstm(), 6).unwrap();
    let full = w.to_file();

    let mut missing = full.clone();
    missing.tensors.remove("bias_hh_l1_reverse");
    let err = RnnWeights::<f32>::from_file(lstm(), &missing, &LoadOptions::strict()).unwrap_err();
    assert_eq!(
        err,
        Error::IncompatibleKeys {
            op: "rnn",
            missing: vec!["bias_hh_l1_reverse".into()],
            unexpected: vec![],
        }
    );
    assert_eq!(err.to_string(), "rnn: missing tensor `bias_hh_l1_reverse`");

    let mut misshaped = full.clone();
    misshaped.insert_real("weight_hh_l0", &Tensor::<f32>::zeros([16, 5]).unwrap());
    let err = RnnWeights::<f32>::from_file(lstm(), &misshaped, &LoadOptions::strict()).unwrap_err();
    assert_eq!(err, Error::shape("rnn", "weight_hh_l0", &[16, 4], &[16, 5]));
    assert_eq!(
        err.to_string(),
        "rnn: argument `weight_hh_l0` has shape [16, 5], expected [16, 4]"
    );

    let mut unknown = full.clone();
    unknown.insert_real("weight_ih_l2", &Tensor::<f32>::zeros([16, 8]).unwrap());
    let err = RnnWeights::<f32>::from_file(lstm(), &unknown, &LoadOptions::strict()).unwrap_err();
    assert_eq!(
        err,
        Error::IncompatibleKeys {
            op: "rnn",
            missing: vec![],
            unexpected: vec!["weight_ih_l2".into()],
        }
    );
    assert_eq!(err.to_string(), "rnn: unexpected tensor `weight_ih_l2`");

    let mut mistyped = full;
    mistyped.insert_ids("weight_ih_l0", &Tensor::new([16, 3], vec![0; 48]).unwrap());
    let err = RnnWeights::<f32>::from_file(lstm(), &mistyped, &LoadOptions::strict()).unwrap_err();
    assert!(
        matches!(&err, Error::Dtype { name, .. } if name == "weight_ih_l0"),
        "{err}"
    );

    let err = RnnWeights::<f32>::from_safetensors(
        lstm(),
        b"not a safetensors file",
        &LoadOptions::strict(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Safetensors(_)), "{err}");
    let err = RnnWeights::<f32>::load(lstm(), "/nonexistent/w.safetensors", &LoadOptions::strict())
        .unwrap_err();
    assert!(
        matches!(&err, Error::Io { path, .. } if path.contains("nonexistent")),
        "{err}"
    );
}

/// A file built by hand: the 8-byte header length, the JSON header, then `data`.
fn raw_file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// What a malformed file's error says: the name given twice (the format forbids it, and a
/// parser that keeps the last would load the wrong tensor), or the tensor whose shape, dtype and
/// offsets disagree.
#[test]
fn malformed_headers_are_refused_by_name() {
    let twice = raw_file(
        r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"a":{"dtype":"F16","shape":[8],"data_offsets":[0,16]}}"#,
        &[0; 16],
    );
    let e = SafetensorsFile::from_bytes(&twice).unwrap_err().to_string();
    assert!(e.contains("`a` appears twice"), "{e}");

    let short = raw_file(
        r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}"#,
        &[0; 16],
    );
    let e = SafetensorsFile::from_bytes(&short).unwrap_err().to_string();
    assert!(e.contains("`w`") && e.contains("needs 12 bytes"), "{e}");

    let past_end = raw_file(
        r#"{"v":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}}"#,
        &[0; 16],
    );
    let e = SafetensorsFile::from_bytes(&past_end)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`v`") && e.contains("16 bytes of data"), "{e}");

    // A well-formed file of the same kind still loads.
    let good = raw_file(
        r#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
        &[0; 16],
    );
    assert_eq!(
        SafetensorsFile::from_bytes(&good).unwrap().tensors["w"].shape,
        [4]
    );
}

/// Stored tensors whose bytes disagree with their shape, and a name no reader could load back,
/// are errors naming the tensor; what is written is little-endian on every host.
#[test]
fn stored_tensors_are_checked_and_portable() {
    let t = StoredTensor {
        dtype: safetensors::Dtype::F32,
        shape: vec![2],
        bytes: vec![0; 9],
    };
    let e = t.to_real::<f32>("p").unwrap_err().to_string();
    assert!(
        e.contains("`p`") && e.contains("needs 8 bytes, has 9"),
        "{e}"
    );
    let ids = StoredTensor {
        dtype: safetensors::Dtype::I64,
        shape: vec![2],
        bytes: vec![0; 15],
    };
    let e = ids.to_ids("ids").unwrap_err().to_string();
    assert!(e.contains("`ids`") && e.contains("needs 16 bytes"), "{e}");

    let v = Tensor::new([2], vec![1.5f32, -2.0]).unwrap();
    let le: Vec<u8> = [1.5f32, -2.0]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    assert_eq!(StoredTensor::from_real(&v).bytes, le);
    let le64: Vec<u8> = [1.5f64, -2.0]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    assert_eq!(StoredTensor::from_real(&v.cast::<f64>()).bytes, le64);

    let mut f = SafetensorsFile::default();
    f.insert_real("__metadata__", &v);
    let e = f.to_bytes().unwrap_err().to_string();
    assert!(e.contains("__metadata__"), "{e}");
}

/// A config whose sizes overflow usize is refused before any shape is computed from it, when
/// initialised and when loaded.
#[test]
fn configs_past_usize_are_refused() {
    for (cfg, field) in [
        (
            RnnConfig::new(CellKind::Lstm, 1, usize::MAX / 2),
            "hidden_size",
        ),
        (
            RnnConfig::new(CellKind::Gru, 1, usize::MAX / 4 + 1),
            "hidden_size",
        ),
        (
            RnnConfig::new(CellKind::RnnTanh, 3, 4).layers(usize::MAX),
            "num_layers",
        ),
        (
            RnnConfig::new(CellKind::Lstm, usize::MAX - 1, 4),
            "input_size",
        ),
    ] {
        let e = RnnWeights::<f32>::init(cfg.clone(), 0).unwrap_err();
        assert!(
            matches!(e, Error::InvalidConfig { field: f, .. } if f == field),
            "{cfg:?}: {e}"
        );
        let e =
            RnnWeights::<f32>::from_file(cfg, &SafetensorsFile::default(), &LoadOptions::default())
                .unwrap_err();
        assert!(e.to_string().contains("usize"), "{e}");
    }
    // Other modules' tensors are counted before they are built: an embedding of 2⁴⁰ × 2⁴⁰.
    let huge = wgrnn::EmbeddingConfig::new(1 << 40, 1 << 40);
    let e = wgrnn::core::EmbeddingWeights::<f32>::init(huge.clone(), 0).unwrap_err();
    assert!(
        matches!(&e, Error::InvalidConfig { field: "sizes", reason, .. } if reason.contains("`weight`")),
        "{e}"
    );
    assert!(wgrnn::core::EmbeddingWeights::<f32>::zeros(huge).is_err());
}

/// A file's float tensors, as a map (what `safetensors.torch.load_file` gives a PyTorch user).
fn tensors_of(file: &SafetensorsFile) -> TensorMap<f32> {
    file.real_tensors().unwrap()
}

/// PyTorch's default is `strict=True`, and so is every constructor of the options but
/// `non_strict`; the prefix builder keeps the strictness it is given.
#[test]
fn load_options_are_strict_unless_said_otherwise() {
    assert!(LoadOptions::default().strict);
    assert_eq!(LoadOptions::default(), LoadOptions::strict());
    assert!(LoadOptions::with_prefix("enc.").strict);
    assert_eq!(LoadOptions::with_prefix("enc.").prefix, "enc.");
    let lenient = LoadOptions::non_strict().prefix("enc.");
    assert_eq!((lenient.strict, lenient.prefix.as_str()), (false, "enc."));

    let mut file = RnnWeights::<f32>::init(lstm(), 1).unwrap().to_file();
    file.insert_real("head.weight", &Tensor::<f32>::zeros([2]).unwrap());
    let e = RnnWeights::<f32>::from_file(lstm(), &file, &LoadOptions::default()).unwrap_err();
    assert!(matches!(e, Error::IncompatibleKeys { .. }), "{e}");
    assert!(RnnWeights::<f32>::from_file(lstm(), &file, &LoadOptions::non_strict()).is_ok());
}

/// `load_state_dict(sd, strict=False)`: what the source holds is loaded, the rest keeps its
/// value, and the report names the missing keys in `state_dict` order and the unexpected ones
/// sorted, prefix included; tensors outside the prefix are neither loaded nor reported.
#[test]
fn non_strict_loading_keeps_what_is_missing_and_reports_it() {
    let init = RnnWeights::<f32>::init(lstm(), 1).unwrap();
    let other = RnnWeights::<f32>::init(lstm(), 2).unwrap();
    let mut file = SafetensorsFile::default();
    for (n, t) in other.tensors() {
        file.insert_real(format!("enc.{n}"), t);
    }
    // Removed in this order so that state_dict order (layer 0 first) and sorted order differ.
    file.tensors.remove("enc.weight_hh_l0");
    file.tensors.remove("enc.bias_ih_l1");
    file.insert_real("enc.weight_ih_l2", &Tensor::<f32>::zeros([16, 8]).unwrap());
    file.insert_real("enc.head", &Tensor::<f32>::zeros([3]).unwrap());
    file.insert_ids("enc.tokens", &Tensor::new([2], vec![1, 2]).unwrap());
    file.insert_real("dec.weight_ih_l0", &Tensor::<f32>::zeros([1]).unwrap());
    let want = LoadReport {
        missing_keys: vec!["enc.weight_hh_l0".into(), "enc.bias_ih_l1".into()],
        unexpected_keys: vec![
            "enc.head".into(),
            "enc.tokens".into(),
            "enc.weight_ih_l2".into(),
        ],
    };
    let opts = LoadOptions::non_strict().prefix("enc.");

    let mut w = init.clone();
    assert_eq!(w.load_state_dict_from(&file, &opts).unwrap(), want);
    for name in w.names() {
        let src = if ["weight_hh_l0", "bias_ih_l1"].contains(&name.as_str()) {
            &init
        } else {
            &other
        };
        assert_eq!(w.get(&name).unwrap(), src.get(&name).unwrap(), "{name}");
    }
    // The map form agrees (integer tensors are not in a float map, so one fewer unexpected).
    let mut m = init.clone();
    let report = m.load_state_dict(tensors_of(&file), &opts).unwrap();
    assert_eq!(report.missing_keys, want.missing_keys);
    assert_eq!(report.unexpected_keys, ["enc.head", "enc.weight_ih_l2"]);
    assert!(!report.is_exact());
    assert_eq!(m, w);
    // An exact source reports nothing and loads strictly.
    let mut s = init.clone();
    let exact = s
        .load_state_dict(other.tensors().clone(), &LoadOptions::strict())
        .unwrap();
    assert!(exact.is_exact(), "{exact:?}");
    assert_eq!(s, other);
}

/// Strict loading into existing weights refuses any mismatch with one error that names what
/// is missing first and the unexpected after, and changes nothing.
#[test]
fn strict_loading_names_missing_then_unexpected_and_changes_nothing() {
    let init = RnnWeights::<f32>::init(lstm(), 1).unwrap();
    let mut file = RnnWeights::<f32>::init(lstm(), 2).unwrap().to_file();
    file.tensors.remove("bias_hh_l0");
    file.tensors.remove("weight_ih_l1_reverse");
    file.insert_real("aaa", &Tensor::<f32>::zeros([1]).unwrap());
    let mut w = init.clone();
    let e = w
        .load_state_dict_from(&file, &LoadOptions::strict())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "rnn: missing tensors `bias_hh_l0`, `weight_ih_l1_reverse`; unexpected tensor `aaa`"
    );
    assert_eq!(w, init);
    let e = w
        .load_state_dict(tensors_of(&file), &LoadOptions::default())
        .unwrap_err();
    assert!(
        matches!(&e, Error::IncompatibleKeys { missing, unexpected, .. }
        if missing.len() == 2 && unexpected == &["aaa"]),
        "{e}"
    );
    assert_eq!(w, init);
    // A constructor has no initial values: missing tensors are an error even when not strict,
    // and the unexpected ones are named beside them.
    let e = RnnWeights::<f32>::from_file(lstm(), &file, &LoadOptions::non_strict()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("rnn: missing tensors `bias_hh_l0`"),
        "{e}"
    );
    assert!(e.to_string().ends_with("unexpected tensor `aaa`"), "{e}");
}

/// As in PyTorch, a size mismatch is an error even when not strict, and nothing is loaded: a
/// tensor that matched before the mis-shaped one keeps its old value.
#[test]
fn misshaped_tensors_are_errors_even_when_not_strict() {
    let init = RnnWeights::<f32>::init(lstm(), 1).unwrap();
    let mut file = RnnWeights::<f32>::init(lstm(), 2).unwrap().to_file();
    file.insert_real("weight_ih_l1", &Tensor::<f32>::zeros([16, 3]).unwrap());
    let want = Error::shape("rnn", "weight_ih_l1", &[16, 8], &[16, 3]);
    let mut w = init.clone();
    let opts = LoadOptions::non_strict();
    assert_eq!(w.load_state_dict_from(&file, &opts).unwrap_err(), want);
    assert_eq!(
        w.load_state_dict(tensors_of(&file), &opts).unwrap_err(),
        want
    );
    assert_eq!(w, init);
    assert_eq!(
        RnnWeights::<f32>::from_file(lstm(), &file, &opts).unwrap_err(),
        want
    );
}

fn cell_cfg(cell: CellKind) -> RnnConfig {
    RnnConfig::new(cell, 3, 4)
}

/// `nn.LSTMCell` & co. save one layer without the `_l0` suffix: a one-layer unidirectional
/// config takes either form (or a mix), strictly, and refuses a file holding both; saving in
/// the cell form writes exactly the cell's names.
#[test]
fn cell_state_dicts_load_into_one_layer_configs() {
    for cell in [CellKind::Lstm, CellKind::Gru, CellKind::RnnTanh] {
        let w = RnnWeights::<f32>::init(cell_cfg(cell), 3).unwrap();
        let file = w.to_cell_file().unwrap();
        let names: Vec<&str> = file.tensors.keys().map(String::as_str).collect();
        assert_eq!(names, ["bias_hh", "bias_ih", "weight_hh", "weight_ih"]);
        let got = RnnWeights::<f32>::from_file(cell_cfg(cell), &file, &LoadOptions::strict());
        assert_eq!(got.unwrap(), w, "{cell:?}");
        // A mix of both forms (a hand-edited file) loads too.
        let mut mixed = file.clone();
        let t = mixed.tensors.remove("weight_hh").unwrap();
        mixed.tensors.insert("weight_hh_l0".into(), t);
        let got = RnnWeights::<f32>::from_file(cell_cfg(cell), &mixed, &LoadOptions::strict());
        assert_eq!(got.unwrap(), w, "{cell:?}");
        // Under a prefix, the cell of a model (`decoder.cell.weight_ih`).
        let mut model = SafetensorsFile::default();
        for (n, t) in w.tensors() {
            model.insert_real(format!("decoder.cell.{}", n.trim_end_matches("_l0")), t);
        }
        let got = RnnWeights::<f32>::from_file(
            cell_cfg(cell),
            &model,
            &LoadOptions::with_prefix("decoder.cell."),
        );
        assert_eq!(got.unwrap(), w, "{cell:?}");
    }
    let no_bias = cell_cfg(CellKind::Gru).bias(false);
    let w = RnnWeights::<f32>::init(no_bias.clone(), 4).unwrap();
    let file = w.to_cell_file().unwrap();
    assert_eq!(file.tensors.len(), 2);
    assert_eq!(
        RnnWeights::<f32>::from_file(no_bias, &file, &LoadOptions::strict()).unwrap(),
        w
    );
}

/// One parameter under both names would load one and drop the other in silence: refused,
/// strict or not, naming both.
#[test]
fn a_parameter_under_both_names_is_refused() {
    let w = RnnWeights::<f32>::init(cell_cfg(CellKind::Lstm), 3).unwrap();
    let mut both = w.to_file();
    both.insert_real("bias_ih", w.get("bias_ih_l0").unwrap());
    for opts in [LoadOptions::strict(), LoadOptions::non_strict()] {
        let e = RnnWeights::<f32>::from_file(cell_cfg(CellKind::Lstm), &both, &opts).unwrap_err();
        assert!(
            matches!(
                &e,
                Error::InvalidArgument {
                    op: "rnn",
                    arg: "state_dict",
                    ..
                }
            ),
            "{e}"
        );
        assert!(
            e.to_string().contains("`bias_ih_l0`") && e.to_string().contains("`bias_ih`"),
            "{e}"
        );
        let mut into = w.clone();
        assert!(into.load_state_dict_from(&both, &opts).is_err());
    }
}

/// Cell names given to a config of more than one layer, or of two directions, are not taken
/// as its first layer: the error names what is missing first (`weight_ih_l0`), then the cell
/// names it did not expect.
#[test]
fn cell_names_for_a_multi_layer_config_name_what_is_missing() {
    let file = RnnWeights::<f32>::init(cell_cfg(CellKind::Lstm), 3)
        .unwrap()
        .to_cell_file()
        .unwrap();
    for cfg in [
        cell_cfg(CellKind::Lstm).layers(2),
        cell_cfg(CellKind::Lstm).bidirectional(true),
    ] {
        let e =
            RnnWeights::<f32>::from_file(cfg.clone(), &file, &LoadOptions::strict()).unwrap_err();
        let Error::IncompatibleKeys {
            missing,
            unexpected,
            ..
        } = &e
        else {
            panic!("{cfg:?}: {e}");
        };
        assert_eq!(missing[0], "weight_ih_l0", "{e}");
        assert_eq!(missing.len(), cfg.param_specs().len(), "{e}");
        assert_eq!(
            unexpected,
            &["bias_hh", "bias_ih", "weight_hh", "weight_ih"]
        );
        assert!(
            e.to_string()
                .starts_with("rnn: missing tensors `weight_ih_l0`, `weight_hh_l0`"),
            "{e}"
        );
        // Not strict: nothing matches, everything is reported, nothing changes.
        let init = RnnWeights::<f32>::init(cfg, 5).unwrap();
        let mut w = init.clone();
        let report = w
            .load_state_dict_from(&file, &LoadOptions::non_strict())
            .unwrap();
        assert_eq!(
            (&report.missing_keys, &report.unexpected_keys),
            (missing, unexpected)
        );
        assert_eq!(w, init);
    }
}

fn pytorch_cells_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pytorch_cells")
}

/// The state dicts PyTorch's cells save (tests/oracle/gen_cell_fixtures.py) load strictly into
/// a one-layer unidirectional config, and its forward gives what the cell computed, step by
/// step, in PyTorch.
#[test]
fn pytorch_cell_state_dicts_load_and_compute_what_the_cell_did() {
    let cases = [
        "lstm_cell",
        "lstm_cell_nobias",
        "gru_cell",
        "rnn_tanh_cell",
        "rnn_relu_cell",
    ];
    for case in cases {
        let io = SafetensorsFile::read(pytorch_cells_dir().join(format!("{case}_io.safetensors")))
            .unwrap();
        let meta = |k: &str| io.meta(k).unwrap_or_else(|| panic!("{case}: no {k}"));
        let size = |k: &str| meta(k).parse::<usize>().unwrap();
        let cell = CellKind::from_name(meta("cell")).unwrap();
        let cfg = RnnConfig::new(cell, size("input_size"), size("hidden_size"))
            .bias(meta("bias") == "true");
        let path = pytorch_cells_dir().join(format!("{case}.safetensors"));
        let sd = SafetensorsFile::read(&path).unwrap();
        assert!(sd.tensors.keys().all(|n| !n.ends_with("_l0")), "{case}");
        let w = RnnWeights::<f32>::load(cfg.clone(), &path, &LoadOptions::default()).unwrap();
        for (n, t) in &sd.tensors {
            assert_eq!(
                w.get(&format!("{n}_l0")).unwrap(),
                &t.to_real::<f32>(n).unwrap(),
                "{case}: {n}"
            );
        }
        let t = |n: &str| io.real::<f32>(n).unwrap();
        let (x, h0) = (t("x"), t("h0"));
        let c0 = cell.has_cell_state().then(|| t("c0"));
        let mut input = RnnInput::new(&x).h0(&h0);
        if let Some(c0) = &c0 {
            input = input.c0(c0);
        }
        let out = rnn_forward(&w, input).unwrap();
        assert_tensor_close(&format!("{case}: y"), &out.y, &t("y"), F32_FORWARD);
        assert_tensor_close(&format!("{case}: h_n"), &out.h_n, &t("h_n"), F32_FORWARD);
        if let Some(c_n) = &out.c_n {
            assert_tensor_close(&format!("{case}: c_n"), c_n, &t("c_n"), F32_FORWARD);
        }
        // Saved in the cell form again, the file holds PyTorch's names and values exactly.
        let back = w.to_cell_file().unwrap();
        assert_eq!(back.tensors, sd.tensors, "{case}");
    }
}
