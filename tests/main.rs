//! The parity suite: one binary, a module per op family.

mod attention;
mod common;
mod embedding;
mod keras;
mod linear_loss;
mod rnn;
