//! Values derived from the session that may take longer than a frame to compute.
//!
//! A [`Computed`] remembers the last value and the key it was computed for. Asking for another
//! key computes it right away when it is cheap, or on a helper thread when it is not; until the
//! helper is done the caller keeps showing the previous value (and may show a spinner). At most
//! one helper runs per value: keys asked for meanwhile (a setting being dragged) are skipped,
//! and the latest one is computed when the helper is done.

use std::sync::Arc;

use crossbeam_channel::{Receiver, TryRecvError};

/// Work below this many element operations is done inline (well under a millisecond).
pub const INLINE_WORK: usize = 4_000_000;

/// A value for a key, computed inline or on a helper thread.
pub struct Computed<K, T> {
    current: Option<(K, Arc<T>)>,
    pending: Option<(K, Receiver<T>)>,
}

impl<K, T> Default for Computed<K, T> {
    fn default() -> Self {
        Self {
            current: None,
            pending: None,
        }
    }
}

impl<K, T> Computed<K, T>
where
    K: Clone + PartialEq + Send + 'static,
    T: Send + Sync + 'static,
{
    /// Nothing computed yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value for `key` when it is ready, else the last value (for another key), if any.
    /// Starts the computation when neither the current value nor the pending one is for `key`:
    /// inline when `work` is at most [`INLINE_WORK`], else on a helper thread that calls `wake`
    /// when it is done (once no other helper of this value is running).
    pub fn request(
        &mut self,
        key: &K,
        work: usize,
        compute: impl FnOnce() -> T + Send + 'static,
        wake: impl FnOnce() + Send + 'static,
    ) -> Option<Arc<T>> {
        self.poll();
        let is_current = self.current.as_ref().is_some_and(|(k, _)| k == key);
        let is_pending = self.pending.as_ref().is_some_and(|(k, _)| k == key);
        if !is_current && !is_pending {
            if work <= INLINE_WORK {
                self.pending = None;
                self.current = Some((key.clone(), Arc::new(compute())));
            } else if self.pending.is_none() {
                let (tx, rx) = crossbeam_channel::bounded(1);
                let spawned = std::thread::Builder::new()
                    .name("judgeq-view".to_owned())
                    .spawn(move || {
                        if tx.send(compute()).is_ok() {
                            wake();
                        }
                    });
                if spawned.is_ok() {
                    self.pending = Some((key.clone(), rx));
                }
            }
        }
        self.current.as_ref().map(|(_, value)| Arc::clone(value))
    }

    /// Whether the value for `key` is the current one.
    pub fn is_current(&self, key: &K) -> bool {
        self.current.as_ref().is_some_and(|(k, _)| k == key)
    }

    /// Whether a helper thread is still working.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// The last value and its key.
    pub fn latest(&self) -> Option<(&K, &Arc<T>)> {
        self.current.as_ref().map(|(k, v)| (k, v))
    }

    /// Forgets everything (a new session); a running helper's result is dropped.
    pub fn clear(&mut self) {
        self.current = None;
        self.pending = None;
    }

    /// Takes a finished helper's result.
    fn poll(&mut self) {
        let Some((key, rx)) = &self.pending else {
            return;
        };
        match rx.try_recv() {
            Ok(value) => {
                self.current = Some((key.clone(), Arc::new(value)));
                self.pending = None;
            }
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Disconnected) => self.pending = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn cheap_work_is_ready_at_once() {
        let mut c = Computed::<u32, u32>::new();
        assert_eq!(c.request(&1, 10, || 11, || {}).as_deref(), Some(&11));
        assert!(c.is_current(&1));
        // Same key: not recomputed.
        assert_eq!(c.request(&1, 10, || 99, || {}).as_deref(), Some(&11));
    }

    #[test]
    fn heavy_work_runs_on_a_helper_and_keeps_the_old_value_meanwhile() {
        let mut c = Computed::<u32, u32>::new();
        c.request(&1, 0, || 11, || {});
        let (woke_tx, woke_rx) = crossbeam_channel::bounded(1);
        let stale = c.request(
            &2,
            INLINE_WORK + 1,
            || {
                std::thread::sleep(Duration::from_millis(20));
                22
            },
            move || woke_tx.send(()).unwrap(),
        );
        assert_eq!(stale.as_deref(), Some(&11));
        assert!(c.is_pending() && !c.is_current(&2));
        woke_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !c.is_current(&2) && Instant::now() < deadline {
            c.request(&2, INLINE_WORK + 1, || 0, || {});
        }
        assert_eq!(c.latest().map(|(k, v)| (*k, **v)), Some((2, 22)));
        assert!(!c.is_pending());
    }

    #[test]
    fn keys_asked_for_while_a_helper_runs_wait_for_it() {
        let mut c = Computed::<u32, u32>::new();
        let (release_tx, release_rx) = crossbeam_channel::bounded::<()>(1);
        c.request(
            &1,
            INLINE_WORK + 1,
            move || release_rx.recv().map_or(0, |()| 11),
            || {},
        );
        // Keys 2 and 3 are asked for while key 1 computes: no second helper starts.
        c.request(&2, INLINE_WORK + 1, || 22, || {});
        c.request(&3, INLINE_WORK + 1, || 33, || {});
        assert!(c.is_pending() && c.latest().is_none());
        release_tx.send(()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !c.is_current(&3) && Instant::now() < deadline {
            c.request(&3, INLINE_WORK + 1, || 33, || {});
        }
        assert_eq!(
            c.latest().map(|(k, v)| (*k, **v)),
            Some((3, 33)),
            "the latest key wins, 2 is skipped"
        );
    }
}
