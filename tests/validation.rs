//! Vulkan validation messages as test failures. wgpu-hal hands every message of the Khronos
//! validation layer (and of the Vulkan loader) to the `log` crate from its debug-utils callback,
//! at error level for errors; without a logger they vanish. This logger keeps the error-level
//! ones, and the [`Watch`] every GPU test holds fails the test on whose thread one arrived (the
//! layer reports from inside the Vulkan call, on the calling thread), naming the message.
//!
//! The layer runs where the instance asks for it: `WGPU_VALIDATION=1` (wgpu's default in debug
//! builds, `WGPU_VALIDATION=0` turns it off) with `vulkan-validationlayers` installed. wgpu then
//! also turns on synchronization validation, so hazards between dispatches are errors too.

use std::cell::Cell;
use std::sync::{Mutex, Once};

/// Targets of wgpu-hal's Vulkan backend; its debug-utils callback logs from `::instance`.
const VULKAN_TARGET: &str = "wgpu_hal::vulkan";

/// What wgpu-hal logs (at debug level) when validation is asked for and the layer is missing.
const LAYER_MISSING: &str = "unable to find layer";

struct Message {
    thread: std::thread::ThreadId,
    /// The test that held a [`Watch`] on the thread it arrived on, if any.
    test: Option<String>,
    text: String,
}

static MESSAGES: Mutex<Vec<Message>> = Mutex::new(Vec::new());

thread_local! {
    static WATCHED: Cell<bool> = const { Cell::new(false) };
    /// Whether this thread's last message was kept (its indented follow-up lines go with it).
    static KEPT: Cell<bool> = const { Cell::new(false) };
}

/// The one error that is the layer's, not ours: with debug info (wgpu's default in debug
/// builds) naga writes `OpSource WGSL`, a source language (10) that the SPIR-V validator of
/// older layers (Debian 12's 1.3.239) does not know yet.
const UNKNOWN_SOURCE_LANGUAGE: &str = "Invalid source language operand: 10";

/// Whether a record fails the run: an error from the Vulkan backend, or the note that the
/// validation asked for cannot run (a run that claims validation must have it).
pub fn fails(level: log::Level, target: &str, text: &str, validation_asked: bool) -> bool {
    target.starts_with(VULKAN_TARGET)
        && ((level == log::Level::Error && !text.contains(UNKNOWN_SOURCE_LANGUAGE))
            || (validation_asked && text.contains(LAYER_MISSING)))
}

/// `WGPU_VALIDATION` set to anything but `0`: the run claims the layer, so its absence fails.
fn validation_asked() -> bool {
    std::env::var("WGPU_VALIDATION").is_ok_and(|v| v != "0")
}

struct Recorder {
    validation_asked: bool,
}

impl log::Log for Recorder {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.target().starts_with(VULKAN_TARGET)
    }

    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let text = r.args().to_string();
        // wgpu-hal logs a message's queues, command buffers and objects as records of their own,
        // indented: they belong to the message before them, kept or not.
        if text.starts_with('\t') {
            let me = std::thread::current().id();
            if let (true, Ok(mut m)) = (KEPT.get(), MESSAGES.lock()) {
                if let Some(last) = m.iter_mut().rev().find(|msg| msg.thread == me) {
                    last.text.push('\n');
                    last.text.push_str(&text);
                }
            }
            return;
        }
        let keep = fails(r.level(), r.target(), &text, self.validation_asked);
        KEPT.set(keep);
        if !keep {
            return;
        }
        let thread = std::thread::current();
        let test = WATCHED
            .get()
            .then(|| thread.name().unwrap_or("?").to_string());
        if let Ok(mut m) = MESSAGES.lock() {
            m.push(Message {
                thread: thread.id(),
                test,
                text,
            });
        }
    }

    fn flush(&self) {}
}

/// Installs the recorder once, before the first instance. The level is the lowest any failing
/// record has: debug where validation is asked for (to hear that the layer is missing), else
/// error, so that wgpu's many debug and trace lines cost one comparison each.
fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let asked = validation_asked();
        let recorder: &'static Recorder = Box::leak(Box::new(Recorder {
            validation_asked: asked,
        }));
        if log::set_logger(recorder).is_ok() {
            log::set_max_level(if asked {
                log::LevelFilter::Debug
            } else {
                log::LevelFilter::Error
            });
        }
    });
}

/// Held for the length of a GPU test: when dropped, fails the test with every message that
/// arrived on its thread, and with those that arrived on threads no test watched.
pub struct Watch(());

pub fn watch() -> Watch {
    install();
    WATCHED.set(true);
    Watch(())
}

/// For the context getters: a GPU test without a [`Watch`] would lose its messages.
pub fn assert_watched() {
    assert!(
        WATCHED.get(),
        "a GPU test must hold `crate::validation::watch()` for its whole length"
    );
}

impl Drop for Watch {
    fn drop(&mut self) {
        WATCHED.set(false);
        let name = std::thread::current().name().map(str::to_string);
        let mine: Vec<String> = match MESSAGES.lock() {
            Ok(mut m) => {
                let (mine, rest) = std::mem::take(&mut *m)
                    .into_iter()
                    .partition(|msg| msg.test.is_none() || msg.test == name);
                *m = rest;
                mine.into_iter().map(|msg| msg.text).collect()
            }
            Err(_) => vec!["the message list was poisoned".to_string()],
        };
        if mine.is_empty() {
            return;
        }
        let report = format!(
            "{} Vulkan validation error(s):\n{}",
            mine.len(),
            mine.join("\n---\n")
        );
        // A test that already fails keeps its own panic; the messages still show.
        if std::thread::panicking() {
            eprintln!("{report}");
        } else {
            panic!("{report}");
        }
    }
}

#[test]
fn an_error_from_the_vulkan_backend_fails_and_other_records_do_not() {
    use log::Level::*;
    let vk = "wgpu_hal::vulkan::instance";
    let msg = "VALIDATION [SYNC-HAZARD-READ-AFTER-WRITE (0x1)]";
    assert!(fails(Error, vk, msg, false));
    assert!(fails(Error, "wgpu_hal::vulkan::device", msg, false));
    assert!(!fails(Warn, vk, msg, true));
    assert!(!fails(Info, vk, msg, true));
    assert!(!fails(Error, "wgpu_core::device", msg, true));
    let missing = "InstanceFlags::VALIDATION requested, but unable to find layer: VK_LAYER_X";
    assert!(fails(Debug, vk, missing, true));
    assert!(!fails(Debug, vk, missing, false));
    let old_layer = "SPIR-V module not valid: Invalid source language operand: 10";
    assert!(!fails(Error, vk, old_layer, true));
}

/// Through the installed logger: an error record on a watched thread fails that test, with its
/// follow-up lines; the old layer's false alarm and its follow-up lines do not.
#[test]
fn a_logged_vulkan_error_fails_the_watching_test() {
    let vk = "wgpu_hal::vulkan::instance";
    let outcome = std::thread::Builder::new()
        .name("watched".into())
        .spawn(move || {
            let _watch = watch();
            log::error!(target: vk, "VALIDATION [x] {UNKNOWN_SOURCE_LANGUAGE}");
            log::error!(target: vk, "\tobjects: ignored with its message");
            log::error!(target: vk, "VALIDATION [VUID-test (0x2)] planted");
            log::error!(target: vk, "\tobjects: (type: BUFFER, name: planted)");
        })
        .map(|t| t.join());
    let panic = match outcome {
        Ok(Err(p)) => p,
        other => panic!("the watching thread should have panicked, got {other:?}"),
    };
    let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        text.starts_with("1 Vulkan validation error(s)"),
        "got {text:?}"
    );
    assert!(
        text.contains("(0x2)] planted\n\tobjects: (type: BUFFER, name: planted)"),
        "got {text:?}"
    );
    assert!(!text.contains("ignored"), "got {text:?}");
}
