//! The handshake between the client and its worker thread: flush and
//! shutdown requests, their answers, the final report.

use crate::report::Report;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

/// The requests and answers, under [`Control`]'s lock.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) flush_requested: u64,
    pub(crate) flush_done: u64,
    pub(crate) shutdown_deadline: Option<Instant>,
    pub(crate) finished: bool,
    pub(crate) final_report: Option<Report>,
}

/// Requests to the worker and its answers.
#[derive(Default)]
pub(crate) struct Control {
    state: Mutex<State>,
    pub(crate) changed: Condvar,
    pub(crate) thread: Mutex<Option<JoinHandle<()>>>,
}

impl Control {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn wake_worker(&self) {
        if let Ok(t) = self.thread.lock()
            && let Some(t) = t.as_ref()
        {
            t.thread().unpark();
        }
    }

    /// Waits until `done` holds or `deadline` passes.
    pub(crate) fn wait(&self, deadline: Instant, done: impl Fn(&State) -> bool) -> bool {
        let mut state = self.lock();
        loop {
            if done(&state) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}
