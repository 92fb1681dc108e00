//! The link arguments of an extension module: on macOS the library leaves libpython's symbols
//! to the interpreter that loads it (`-undefined dynamic_lookup`), which maturin would add for
//! its own builds but `cargo build --workspace` needs too. Elsewhere this adds nothing.

fn main() {
    pyo3_build_config::add_extension_module_link_args();
}
