//! Spinning briefly before blocking, for the simulated machine's hand-offs between threads.
//!
//! What it owns: the one policy every hand-off of the simulated machine uses before it blocks
//! on a channel or a condition variable: a request's completion, an interrupt reaching the
//! interrupt CPU, a doorbell reaching the device model. (A system call is no hand-off: it runs
//! on the calling thread.) A blocked thread costs a futex wake and a context switch on each
//! hand-off (several microseconds on a loaded two-core host, most of a simulated MAD round
//! trip); a thread that polls for a short while first usually finds the answer already there.
//! Windows spins the same way before it waits (a dispatcher object's wait, a queued spin lock).
//!
//! An application thread that waits for a request is one of the machine's idle CPUs (the
//! device's interrupts go to it): it polls for as long as its recent waits lasted, within a
//! limit ([`spin_idle`]), so that a device model raising interrupts at a steady pace does not
//! pay for waking it, as a device does not on hardware.
//!
//! The budget is short and bounded by time, so a waiter that finds nothing gives its core
//! back quickly: on a host with fewer cores than busy threads, a long spin would only take the
//! core from the thread that is to produce the answer. For the same reason only a machine
//! alone in its process spins (a benchmark, `rhca-lab run`), or machines that take turns
//! ([`TakingTurns`]: a benchmark comparing two); machines side by side (a test suite) block at
//! once. Nothing here changes what the machine does, only how soon a waiting thread notices.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a waiter polls before it blocks, unless `WDK_SIM_SPIN_US` says otherwise.
pub const SPIN: Duration = Duration::from_micros(20);

/// The budget in force: [`SPIN`], or `WDK_SIM_SPIN_US` microseconds when that is set.
///
/// The variable is read once. `0` turns spinning off, as an instruction-counting run under
/// valgrind wants: there every thread runs on one host thread, and a spinning one only delays
/// the one it waits for.
#[must_use]
pub fn budget() -> Duration {
    static BUDGET: OnceLock<Duration> = OnceLock::new();
    *BUDGET.get_or_init(|| {
        std::env::var("WDK_SIM_SPIN_US")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .map_or(SPIN, Duration::from_micros)
    })
}

/// Polls between two looks at the clock.
const POLLS_PER_CLOCK: u32 = 16;

/// Threads spinning now, in every machine of the process.
static SPINNERS: AtomicUsize = AtomicUsize::new(0);

/// Machines alive in the process ([`LiveMachine`]).
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Counts a machine among the live ones for as long as it exists (a field of the machine).
#[derive(Debug)]
pub(crate) struct LiveMachine(());

impl LiveMachine {
    pub(crate) fn new() -> Self {
        LIVE.fetch_add(1, Ordering::AcqRel);
        Self(())
    }
}

impl Drop for LiveMachine {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Live [`TakingTurns`] guards.
static TURNS: AtomicUsize = AtomicUsize::new(0);

/// While alive, the machines of the process take turns, and spin as a machine alone does.
///
/// A benchmark that compares two machines side by side runs one while the other is idle: with
/// one machine working at a time, spinning takes no core a working thread needs. Without it,
/// two machines measured side by side would both block at every hand-off and measure a slower
/// machine than either is alone.
#[derive(Debug)]
pub struct TakingTurns(());

impl TakingTurns {
    /// Declares that the process's machines take turns until the guard is dropped.
    #[must_use]
    pub fn new() -> Self {
        TURNS.fetch_add(1, Ordering::AcqRel);
        Self(())
    }
}

impl Default for TakingTurns {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TakingTurns {
    fn drop(&mut self) {
        TURNS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How many threads may spin at once (`WDK_SIM_SPINNERS` overrides it). With one machine in
/// the process, twice the host's cores: its application, simulated CPUs, interrupt CPU and
/// device hand work to each other and each hand-off found awake saves a wake-up (a MAD round
/// trip took 108-118 µs with four spinners on two cores, 132-144 µs with one). With several
/// machines (a test suite running tests side by side) none: there the spinners took the cores
/// from the threads they waited for, and the suite's scenarios took 5.8 s with one spinner
/// and 7-8 s with no limit, against 3.6 s without spinning.
fn max_spinners() -> usize {
    static FIXED: OnceLock<Option<usize>> = OnceLock::new();
    static CORES: OnceLock<usize> = OnceLock::new();
    let fixed = *FIXED.get_or_init(|| {
        std::env::var("WDK_SIM_SPINNERS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
    });
    let cores = *CORES
        .get_or_init(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get));
    let live = if TURNS.load(Ordering::Acquire) > 0 {
        1
    } else {
        LIVE.load(Ordering::Acquire)
    };
    spinners_allowed(fixed, cores, live)
}

/// The policy of [`max_spinners`]: `fixed` if set, else twice the `cores` with at most one
/// `live` machine (or machines taking turns), else none.
const fn spinners_allowed(fixed: Option<usize>, cores: usize, live: usize) -> usize {
    match fixed {
        Some(n) => n,
        None if live <= 1 => 2 * cores,
        None => 0,
    }
}

/// A place among the spinners, given back when dropped.
struct Spinning;

impl Spinning {
    fn enter() -> Option<Self> {
        let max = max_spinners();
        SPINNERS
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Self)
    }
}

impl Drop for Spinning {
    fn drop(&mut self) {
        SPINNERS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Calls `poll` until it returns `Some` or the [`budget`] has passed; `None` then.
///
/// The caller then blocks as it would have without spinning. A caller that finds as many
/// threads spinning as `max_spinners` allows looks once and does not spin.
pub fn spin<T>(poll: impl FnMut() -> Option<T>) -> Option<T> {
    spin_for(budget(), poll)
}

/// The longest an idle CPU polls before it blocks ([`spin_idle`]).
pub const IDLE_POLL_MAX: Duration = Duration::from_micros(500);

thread_local! {
    /// How long this thread polls when it next waits as an idle CPU, beyond the [`budget`]
    /// ([`spin_idle`], [`idle_slept`]).
    static IDLE_POLL: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

/// As [`spin`], for a thread that waits as one of the simulated machine's idle CPUs.
///
/// Such a thread (an application thread blocked in a request's wait, which takes the device's
/// interrupts) polls for as long as its recent waits lasted, up to [`IDLE_POLL_MAX`], and at
/// least the [`budget`] ([`idle_slept`] says how long they lasted).
///
/// Why: a device model's thread that raises an interrupt for a thread asleep in a wait must
/// wake it, a futex wake and an inter-processor interrupt between the host's virtual CPUs that
/// the device's thread pays for (a capture stream's device spent 7-8 % of its time in the host
/// kernel doing so, one wake per interrupt). A device does not pay for an interrupt on
/// hardware: its MSI is a posted write, and the processor it wakes is woken by the interrupt
/// controller. A waiter that polls while its interrupts come at a steady pace is woken by a
/// store. This is what a virtual machine's halt polling does for its idle virtual CPUs, and for
/// the same reason; like it, the window grows while waits end within it and falls back to the
/// budget after one that did not.
pub fn spin_idle<T>(poll: impl FnMut() -> Option<T>) -> Option<T> {
    let base = budget();
    if base.is_zero() {
        return None;
    }
    spin_for(IDLE_POLL.with(Cell::get).max(base), poll)
}

/// Tells [`spin_idle`]'s policy how this thread's last idle wait went.
///
/// It polled in vain and then slept for `slept` before its answer came: the next wait polls
/// long enough to have caught it (with a quarter to spare, and at least twice as long as this
/// one did) when that is within [`IDLE_POLL_MAX`], else only for the [`budget`].
pub fn idle_slept(slept: Duration) {
    IDLE_POLL.with(|w| w.set(next_idle_poll(w.get().max(budget()), slept)));
}

/// The policy of [`idle_slept`]: the window after a wait that polled for `polled` and then
/// slept for `slept`.
fn next_idle_poll(polled: Duration, slept: Duration) -> Duration {
    let waited = polled + slept;
    if waited > IDLE_POLL_MAX {
        return Duration::ZERO;
    }
    (waited + waited / 4).max(2 * polled).min(IDLE_POLL_MAX)
}

/// [`spin`] with a budget of `budget`.
fn spin_for<T>(budget: Duration, mut poll: impl FnMut() -> Option<T>) -> Option<T> {
    if budget.is_zero() {
        return None;
    }
    let Some(_spinning) = Spinning::enter() else {
        // No core to spare: one look, then block.
        return poll();
    };
    let start = Instant::now();
    loop {
        for _ in 0..POLLS_PER_CLOCK {
            if let Some(v) = poll() {
                return Some(v);
            }
            std::hint::spin_loop();
        }
        if start.elapsed() >= budget {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_already_there_is_returned_at_once() {
        assert_eq!(spin(|| Some(7)), Some(7));
    }

    #[test]
    fn nothing_within_the_budget_is_nothing() {
        // Whether this thread spins depends on the machines other tests have alive; either
        // way the answer is none, and it comes within the budget.
        let t = Instant::now();
        assert_eq!(spin(|| None::<()>), None);
        assert!(t.elapsed() < budget() + Duration::from_secs(1));
    }

    #[test]
    fn spinning_is_for_a_machine_alone_unless_told_otherwise() {
        assert_eq!(spinners_allowed(None, 2, 0), 4);
        assert_eq!(spinners_allowed(None, 2, 1), 4);
        assert_eq!(
            spinners_allowed(None, 2, 2),
            0,
            "two machines share the host"
        );
        assert_eq!(spinners_allowed(Some(1), 2, 5), 1);
        assert_eq!(spinners_allowed(Some(0), 8, 1), 0);
    }

    #[test]
    fn an_idle_wait_polls_as_long_as_recent_waits_lasted_within_the_limit() {
        let us = Duration::from_micros;
        // Interrupts every ~140 µs, a 20 µs window: the next window catches such a wait.
        assert_eq!(next_idle_poll(us(20), us(120)), us(175));
        // A short sleep still doubles the window, so that it reaches a steady pace quickly.
        assert_eq!(next_idle_poll(us(100), us(4)), us(200));
        // Never beyond the limit, and back to the budget after a wait longer than it.
        assert_eq!(next_idle_poll(us(300), us(100)), IDLE_POLL_MAX);
        assert_eq!(next_idle_poll(us(400), us(200)), Duration::ZERO);
        assert_eq!(next_idle_poll(us(20), us(1000)), Duration::ZERO);
    }

    #[test]
    fn a_thread_s_idle_window_follows_its_own_waits() {
        // On a thread of its own: the window is per thread.
        std::thread::spawn(|| {
            let window = || IDLE_POLL.with(Cell::get);
            assert_eq!(
                window(),
                Duration::ZERO,
                "a new thread polls for the budget"
            );
            idle_slept(Duration::from_micros(150));
            let grown = window();
            assert!(
                grown >= budget() + Duration::from_micros(150) && grown <= IDLE_POLL_MAX,
                "{grown:?}"
            );
            idle_slept(Duration::from_millis(2));
            assert_eq!(
                window(),
                Duration::ZERO,
                "back to the budget after a long wait"
            );
        })
        .join()
        .expect("the policy's thread");
    }

    #[test]
    fn a_value_that_arrives_while_spinning_is_seen() {
        let mut polls = 0;
        assert_eq!(
            spin(|| {
                polls += 1;
                (polls == 40).then_some(polls)
            }),
            Some(40)
        );
    }
}
