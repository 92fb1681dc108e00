//! Several op calls in one command buffer and one submit: [`Context::record`] opens a
//! [`Recording`], every op takes it in place of the context (`rnn_forward(&mut rec, …)`), and
//! [`Recording::submit`] sends all of it at once. A trainer's step (forward, loss, backward,
//! optimizer step) is then one `queue.submit` instead of one per op.
//!
//! Every op has one implementation: called with a `&Context` it records into a recording of its
//! own and submits it before returning; called with a `&mut Recording` it appends. Either way it
//! returns its device tensors at once; their contents are defined once the recording holding
//! their commands is submitted.
//!
//! What holds while a recording is open:
//! - every buffer a recorded command uses stays alive (and out of the pool) until the submit,
//!   even if the caller drops its tensors;
//! - an op that fails leaves the recording as it was before the call: no command of it is
//!   submitted later, and host state it changed is put back;
//! - a use that would see the recorded commands out of order is refused with
//!   [`Error::Unsubmitted`] rather than run: [`Context::read`] of a tensor the recording writes
//!   (submit first: the context cannot submit a recording its caller holds), and any other
//!   work (an op call, another recording, a checkpoint load) that uses a tensor the recording
//!   writes, or writes one it reads;
//! - dropping a recording without submitting discards it: nothing of it runs, and host state
//!   its ops changed (an optimizer's step count) is put back.
//!
//! An op's host arguments (a learning rate, lengths, scalars) are taken when it is recorded.
//!
//! [`Error::Unsubmitted`]: wgrnn_core::Error::Unsubmitted

use std::ops::{Deref, DerefMut};

use wgrnn_core::Result;

use crate::runtime::context::Context;
use crate::runtime::record::{Mark, Recorder};

/// Op calls recorded on one context, run by one [`Recording::submit`]. Made by
/// [`Context::record`]; pass `&mut recording` where an op takes its context.
///
/// ```no_run
/// # fn main() -> wgrnn_core::Result<()> {
/// use wgrnn_gpu::{Context, GpuWeights, linear_forward, cross_entropy, upload_targets};
/// use wgrnn_core::{LinearConfig, Tensor};
/// let ctx = Context::new()?;
/// let w = GpuWeights::init(&ctx, LinearConfig::new(4, 3), 0)?;
/// let x = ctx.upload(&Tensor::new([2, 4], vec![0.5; 8])?)?;
/// let targets = upload_targets(&ctx, &Tensor::new([2], vec![0i64, 2])?, 3, None)?;
/// let mut rec = ctx.record();
/// let logits = linear_forward(&mut rec, &w, &x)?;
/// let ce = cross_entropy(&mut rec, &logits, &targets)?;
/// rec.submit()?; // one submit for both ops
/// let loss = ctx.read(&ce.loss)?;
/// # Ok(()) }
/// ```
pub struct Recording<'c> {
    rec: Recorder<'c>,
}

impl std::fmt::Debug for Recording<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Recording({} commands)", self.rec.commands())
    }
}

const SUBMIT: &str = "Recording::submit";

impl Context {
    /// An empty recording on this context (see [`Recording`]).
    pub fn record(&self) -> Recording<'_> {
        Recording {
            rec: Recorder::new(self, SUBMIT),
        }
    }
}

impl<'c> Recording<'c> {
    /// The context it records on.
    pub fn context(&self) -> &'c Context {
        self.rec.ctx()
    }

    /// Commands recorded so far: kernel dispatches, buffer copies and clears.
    pub fn commands(&self) -> usize {
        self.rec.commands()
    }

    /// Encodes every recorded command into one command encoder and submits it once; then the
    /// tensors the ops returned hold their results and may be read. An error (a device
    /// validation error) submits nothing.
    pub fn submit(self) -> Result<()> {
        self.rec.submit()
    }

    /// Records `f` whole or not at all: if it fails, everything it recorded is taken back (as
    /// one failing op's commands are) and the recording is as before the call.
    pub fn all_or_nothing<R>(&mut self, f: impl FnOnce(&mut Self) -> Result<R>) -> Result<R> {
        let mark = self.rec.mark();
        let r = f(self);
        if r.is_err() {
            self.rec.rollback(mark);
        }
        r
    }
}

/// Where an op records: a `&Context` (the op records and submits on its own, the one-call
/// form) or a `&mut Recording` (the op appends to it; see [`Recording`]). Sealed: these two
/// are all.
pub trait Record<'c>: sealed::Target<'c> {}

impl<'c> Record<'c> for &'c Context {}

impl<'c> Record<'c> for &mut Recording<'c> {}

pub(crate) mod sealed {
    use super::*;

    pub trait Target<'c> {
        /// The context the op checks its arguments against.
        fn context(&self) -> &'c Context;

        /// Starts recording the op `op`.
        fn begin<'r>(self, op: &'static str) -> OpRecorder<'r, 'c>
        where
            Self: 'r;
    }

    impl<'c> Target<'c> for &'c Context {
        fn context(&self) -> &'c Context {
            self
        }

        fn begin<'r>(self, op: &'static str) -> OpRecorder<'r, 'c>
        where
            Self: 'r,
        {
            OpRecorder(Inner::Alone(Recorder::new(self, op)))
        }
    }

    impl<'c> Target<'c> for &mut Recording<'c> {
        fn context(&self) -> &'c Context {
            self.rec.ctx()
        }

        fn begin<'r>(self, op: &'static str) -> OpRecorder<'r, 'c>
        where
            Self: 'r,
        {
            let mark = self.rec.mark();
            let outer = self.rec.set_op(op);
            OpRecorder(Inner::Appending(Appending {
                rec: &mut self.rec,
                mark,
                outer,
                done: false,
            }))
        }
    }
}

/// The recorder of one op call: its own (submitted by [`OpRecorder::finish`]) or a
/// recording's (rolled back to where the op began unless the op finishes).
pub struct OpRecorder<'r, 'c>(Inner<'r, 'c>);

enum Inner<'r, 'c> {
    Alone(Recorder<'c>),
    Appending(Appending<'r, 'c>),
}

struct Appending<'r, 'c> {
    rec: &'r mut Recorder<'c>,
    mark: Mark,
    /// The recording's own name, put back when the op ends.
    outer: &'static str,
    done: bool,
}

impl Drop for Appending<'_, '_> {
    /// An op that did not finish (it returned an error) takes back what it recorded.
    fn drop(&mut self) {
        if !self.done {
            self.rec.rollback(self.mark);
        }
        self.rec.set_op(self.outer);
    }
}

impl OpRecorder<'_, '_> {
    /// Ends the op: submits its own recorder, or keeps its commands in the recording (after
    /// reporting a refused copy or clear, which takes them all back).
    pub(crate) fn finish(self) -> Result<()> {
        match self.0 {
            Inner::Alone(rec) => rec.submit(),
            Inner::Appending(mut a) => match a.rec.take_refusal() {
                Some(e) => Err(e),
                None => {
                    a.done = true;
                    Ok(())
                }
            },
        }
    }
}

impl<'c> Deref for OpRecorder<'_, 'c> {
    type Target = Recorder<'c>;

    fn deref(&self) -> &Recorder<'c> {
        match &self.0 {
            Inner::Alone(r) => r,
            Inner::Appending(a) => a.rec,
        }
    }
}

impl<'c> DerefMut for OpRecorder<'_, 'c> {
    fn deref_mut(&mut self) -> &mut Recorder<'c> {
        match &mut self.0 {
            Inner::Alone(r) => r,
            Inner::Appending(a) => a.rec,
        }
    }
}
