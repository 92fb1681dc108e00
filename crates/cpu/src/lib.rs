//! The reference implementation of wgrnn: every op forward and backward, generic over f32 and
//! f64, written for clarity and checked against finite differences and Keras. The GPU engine is
//! tested against it.

pub mod gemm;
pub mod rnn;

pub use rnn::{
    RnnGrads, RnnInput, RnnOutput, RnnOutputGrads, RnnTape, rnn_backward, rnn_forward,
    rnn_forward_train,
};
