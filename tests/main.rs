//! The parity suite: one binary, a module per op family.

mod common;
mod keras;
