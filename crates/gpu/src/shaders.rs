//! The kernel source registry: every WGSL file of `shaders/`, each with the shared prelude.

/// The shared prelude (activation functions), prepended to every file.
pub const COMMON: &str = include_str!("../../../shaders/common.wgsl");
pub const MATMUL: &str = include_str!("../../../shaders/matmul.wgsl");
pub const PACK: &str = include_str!("../../../shaders/pack.wgsl");
pub const LSTM: &str = include_str!("../../../shaders/lstm.wgsl");
pub const GRU: &str = include_str!("../../../shaders/gru.wgsl");
pub const RNN: &str = include_str!("../../../shaders/rnn.wgsl");
pub const EMBEDDING: &str = include_str!("../../../shaders/embedding.wgsl");
pub const ATTENTION: &str = include_str!("../../../shaders/attention.wgsl");
pub const LOSS: &str = include_str!("../../../shaders/loss.wgsl");
pub const OPTIM: &str = include_str!("../../../shaders/optim.wgsl");
pub const ELEMENTWISE: &str = include_str!("../../../shaders/elementwise.wgsl");

/// One WGSL file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shader {
    Matmul,
    Pack,
    Lstm,
    Gru,
    Rnn,
    Embedding,
    Attention,
    Loss,
    Optim,
    Elementwise,
}

impl Shader {
    pub const ALL: [Shader; 10] = [
        Shader::Matmul,
        Shader::Pack,
        Shader::Lstm,
        Shader::Gru,
        Shader::Rnn,
        Shader::Embedding,
        Shader::Attention,
        Shader::Loss,
        Shader::Optim,
        Shader::Elementwise,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Shader::Matmul => "matmul.wgsl",
            Shader::Pack => "pack.wgsl",
            Shader::Lstm => "lstm.wgsl",
            Shader::Gru => "gru.wgsl",
            Shader::Rnn => "rnn.wgsl",
            Shader::Embedding => "embedding.wgsl",
            Shader::Attention => "attention.wgsl",
            Shader::Loss => "loss.wgsl",
            Shader::Optim => "optim.wgsl",
            Shader::Elementwise => "elementwise.wgsl",
        }
    }

    fn file(self) -> &'static str {
        match self {
            Shader::Matmul => MATMUL,
            Shader::Pack => PACK,
            Shader::Lstm => LSTM,
            Shader::Gru => GRU,
            Shader::Rnn => RNN,
            Shader::Embedding => EMBEDDING,
            Shader::Attention => ATTENTION,
            Shader::Loss => LOSS,
            Shader::Optim => OPTIM,
            Shader::Elementwise => ELEMENTWISE,
        }
    }

    /// The full module source: prelude + file.
    pub fn source(self) -> String {
        format!("{COMMON}\n{}", self.file())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses and validates every shader with naga and translates every entry point to MSL and
    /// HLSL, so Metal and DX12 breakage shows on any machine, GPU or not.
    #[test]
    fn every_shader_validates_and_translates_to_msl_and_hlsl() {
        for shader in Shader::ALL {
            let name = shader.name();
            let module = naga::front::wgsl::parse_str(&shader.source())
                .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(&shader.source())));
            let info = naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::empty(),
            )
            .validate(&module)
            .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(&shader.source())));
            assert!(!module.entry_points.is_empty(), "{name}: no entry point");

            let msl_opts = naga::back::msl::Options::default();
            for ep in &module.entry_points {
                let pipeline = naga::back::msl::PipelineOptions {
                    entry_point: Some((ep.stage, ep.name.clone())),
                    ..Default::default()
                };
                naga::back::msl::write_string(&module, &info, &msl_opts, &pipeline)
                    .unwrap_or_else(|e| panic!("{name} {} → MSL: {e}", ep.name));
            }

            let hlsl_opts = naga::back::hlsl::Options::default();
            let mut out = String::new();
            let pipeline_opts = naga::back::hlsl::PipelineOptions::default();
            let mut writer = naga::back::hlsl::Writer::new(&mut out, &hlsl_opts, &pipeline_opts);
            writer
                .write(&module, &info, None)
                .unwrap_or_else(|e| panic!("{name} → HLSL: {e}"));
            assert!(
                out.contains("numthreads"),
                "{name}: HLSL has no compute entry point"
            );
        }
    }
}
