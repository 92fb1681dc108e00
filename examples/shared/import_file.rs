//! The import example's work, shared with its test: read a model file by its extension,
//! describe each module in one line, and gather every module's tensors and config into one
//! safetensors file.

use std::path::Path;

use wgrnn::Error;
use wgrnn::core::SafetensorsFile;
use wgrnn::import::{Layer, Module};

/// The modules of an `.onnx` or `.keras` file.
pub fn read(path: &Path) -> wgrnn::Result<Vec<Module>> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("onnx") => wgrnn::import::onnx::read(path),
        Some("keras") => wgrnn::import::keras::read(path),
        _ => Err(Error::invalid_argument(
            "import",
            "MODEL",
            format!("{} is neither an .onnx nor a .keras file", path.display()),
        )),
    }
}

/// One line: the name, the kind, the sizes, and for a recurrent module its layers and
/// directions.
pub fn describe(m: &Module) -> String {
    match &m.layer {
        Layer::Rnn(r) => {
            let c = r.weights.config();
            let dirs = match (c.bidirectional, r.reverse) {
                (true, _) => "bidirectional",
                (false, true) => "reverse",
                (false, false) => "forward",
            };
            let mut line = format!(
                "{}: {} input_size {} hidden_size {} num_layers {} {dirs}, {}{}",
                m.name,
                c.cell.name(),
                c.input_size,
                c.hidden_size,
                c.num_layers,
                if c.batch_first {
                    "batch_first"
                } else {
                    "sequence-major"
                },
                if c.bias { "" } else { ", no bias" },
            );
            if c.cell == wgrnn::CellKind::Gru {
                line += &format!(", gru_reset {}", c.gru_reset.name());
            }
            if !r.return_sequences {
                line += ", last step only";
            }
            line
        }
        Layer::Embedding(e) => {
            let c = e.weights.config();
            let mask = if e.mask_zero { ", mask_zero" } else { "" };
            format!(
                "{}: embedding {} x {}{mask}",
                m.name, c.num_embeddings, c.embedding_dim
            )
        }
        Layer::Linear(l) => {
            let c = l.weights.config();
            let bias = if c.bias { "" } else { ", no bias" };
            format!(
                "{}: linear {} -> {}{bias}, activation {}",
                m.name, c.in_features, c.out_features, l.activation
            )
        }
    }
}

/// Every module's tensors under `<name>.` and its config as JSON under `<name>.config`.
pub fn to_file(modules: &[Module]) -> wgrnn::Result<SafetensorsFile> {
    if modules.is_empty() {
        let why = "holds no LSTM, GRU, RNN, Embedding or Dense layer to import";
        return Err(Error::invalid_argument("import", "MODEL", why));
    }
    let mut file = SafetensorsFile::default();
    for m in modules {
        for (name, t) in m.tensors() {
            file.insert_real(format!("{}.{name}", m.name), t);
        }
        file.metadata
            .insert(format!("{}.config", m.name), m.config_json());
    }
    Ok(file)
}
