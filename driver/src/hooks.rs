//! Deliberate driver defects, for the tests that prove each check of the simulated machine fires.
//!
//! They exist with feature `test-hooks`, which only `rhca-tests` enables. Without the feature the statics do
//! not exist and every query is a `const fn` returning `false`, so the driver that ships has no
//! way to turn them on.

#[cfg(feature = "test-hooks")]
use core::sync::atomic::{AtomicBool, Ordering};

/// Skip the persistent strategy's per-segment flushes, to show that the simulated platforms
/// catch a driver that forgets them.
#[cfg(feature = "test-hooks")]
pub static SKIP_PERSISTENT_FLUSH: AtomicBool = AtomicBool::new(false);

/// A stream ended by surprise removal never puts its mapping (nor frees its buffers), to show
/// that the leak checks catch it.
#[cfg(feature = "test-hooks")]
pub static LEAK_ON_REMOVAL: AtomicBool = AtomicBool::new(false);

/// STOP requests are completed twice, to show that the framework checks catch it.
#[cfg(feature = "test-hooks")]
pub static COMPLETE_STOP_TWICE: AtomicBool = AtomicBool::new(false);

/// Whether [`SKIP_PERSISTENT_FLUSH`] is on.
#[cfg(feature = "test-hooks")]
#[must_use]
pub fn skip_persistent_flush() -> bool {
    SKIP_PERSISTENT_FLUSH.load(Ordering::Relaxed)
}

/// Whether [`LEAK_ON_REMOVAL`] is on.
#[cfg(feature = "test-hooks")]
#[must_use]
pub fn leak_on_removal() -> bool {
    LEAK_ON_REMOVAL.load(Ordering::Relaxed)
}

/// Whether [`COMPLETE_STOP_TWICE`] is on.
#[cfg(feature = "test-hooks")]
#[must_use]
pub fn complete_stop_twice() -> bool {
    COMPLETE_STOP_TWICE.load(Ordering::Relaxed)
}

/// Never, without `test-hooks`.
#[cfg(not(feature = "test-hooks"))]
#[must_use]
pub const fn skip_persistent_flush() -> bool {
    false
}

/// Never, without `test-hooks`.
#[cfg(not(feature = "test-hooks"))]
#[must_use]
pub const fn leak_on_removal() -> bool {
    false
}

/// Never, without `test-hooks`.
#[cfg(not(feature = "test-hooks"))]
#[must_use]
pub const fn complete_stop_twice() -> bool {
    false
}
