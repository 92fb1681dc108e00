//! The parity suite: one binary, a module per op family.

mod attention;
mod bce;
mod bench_cli;
mod cases;
mod charlm;
#[path = "../examples/shared/charts.rs"]
mod charts;
#[path = "../examples/shared/checks.rs"]
mod checks;
mod common;
mod concat;
mod contexts;
mod dates_data;
mod dates_model;
mod dropout;
mod embedding;
mod errors;
mod gpu;
mod gpu_backward;
mod gpu_bce;
mod gpu_concat;
mod gpu_dropout;
mod gpu_ops;
mod gpu_ops_backward;
mod gpu_pool;
mod gpu_rnn;
mod import;
mod import_errors;
#[path = "../examples/shared/import_file.rs"]
mod import_file;
mod keras;
mod large_models;
mod linear_loss;
mod optim;
mod padding;
mod paths;
mod pool;
mod recording;
mod rnn;
mod sentiment_data;
mod sentiment_model;
mod validation;
mod weights_io;
