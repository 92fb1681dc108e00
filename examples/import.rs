//! Imports the recurrent layers of an ONNX file, or the recurrent, embedding and dense layers of
//! a Keras 3 `.keras` file, and writes them to one safetensors file under PyTorch's names: each
//! module's tensors under `<name>.` (`lstm.weight_ih_l0`), its config as JSON in the file's
//! metadata under `<name>.config`. It prints one line per module found.
//!
//! cargo run --release --example import -- model.onnx --out model.safetensors
//! cargo run --release --example import -- model.keras --out model.safetensors
//!
//! The file loads in wgrnn with `RnnWeights::load(config, path, &LoadOptions::with_prefix("lstm."))`
//! and in PyTorch with `safetensors.torch.load_file` into the matching `torch.nn` module (strip
//! the prefix from the names).

#[path = "shared/import_file.rs"]
mod import_file;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(
    about = "Import an ONNX or Keras 3 model's layers into a safetensors file with PyTorch names"
)]
struct Args {
    /// The model: an `.onnx` file or a `.keras` file.
    model: PathBuf,
    /// Where to write the safetensors file.
    #[arg(long)]
    out: PathBuf,
}

fn run(args: &Args) -> wgrnn::Result<()> {
    let modules = import_file::read(&args.model)?;
    for m in &modules {
        println!("{}", import_file::describe(m));
    }
    let file = import_file::to_file(&modules)?;
    file.write(&args.out)?;
    println!(
        "wrote {} tensors of {} module(s) to {}",
        file.tensors.len(),
        modules.len(),
        args.out.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("import: {e}");
            ExitCode::FAILURE
        }
    }
}
