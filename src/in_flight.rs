//! A cap on each client's requests executing at once, beside its request
//! rate: a rate limit lets a client start a burst of slow requests that
//! together hold every pooled database connection; this holds it to a few.
//!
//! Clients are keyed as for the rate limit (token `sub` per kind of client,
//! IP address without a token). A key's entry lives only while it has a
//! request in flight, so the map never grows with every client seen.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::http::ClientKind;
use crate::metrics::Metrics;

type Key = (ClientKind, String);

/// Requests in flight per client, with the cap of the settings.
#[derive(Debug)]
pub struct InFlight {
    cap: Option<NonZeroU32>,
    counts: Mutex<HashMap<Key, u32>>,
    metrics: Arc<Metrics>,
}

/// One request in flight: dropping it (the response is done, or the caller
/// went away) gives its place back.
#[derive(Debug)]
pub struct Permit {
    owner: Arc<InFlight>,
    key: Option<Key>,
}

impl InFlight {
    /// `cap` requests per client at once (`None`: no cap, only counted).
    pub fn new(cap: Option<NonZeroU32>, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self { cap, counts: Mutex::default(), metrics })
    }

    /// A place for one more request of `key`, or `None` when it has `cap`
    /// in flight already.
    pub fn try_acquire(self: &Arc<Self>, kind: ClientKind, key: &str) -> Option<Permit> {
        let key = match self.cap {
            None => None,
            Some(cap) => {
                let key = (kind, key.to_owned());
                let mut counts = self.lock();
                let n = counts.entry(key.clone()).or_default();
                if *n >= cap.get() {
                    return None;
                }
                *n += 1;
                Some(key)
            }
        };
        self.metrics.requests_in_flight.inc();
        Some(Permit { owner: self.clone(), key })
    }

    /// Clients with a request in flight now.
    pub fn clients(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Key, u32>> {
        // Plain counts survive a panic elsewhere: keep using them.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.owner.metrics.requests_in_flight.dec();
        if let Some(key) = self.key.take() {
            let mut counts = self.owner.lock();
            if let Some(n) = counts.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_each_client_to_the_cap_and_forgets_idle_clients() {
        let metrics = Arc::new(Metrics::default());
        let limit = InFlight::new(NonZeroU32::new(2), metrics.clone());
        let a1 = limit.try_acquire(ClientKind::People, "alice");
        let a2 = limit.try_acquire(ClientKind::People, "alice");
        assert!(a1.is_some() && a2.is_some());
        assert!(limit.try_acquire(ClientKind::People, "alice").is_none(), "third of alice");
        // Another client, or the same `sub` as another kind, has its own places.
        let b = limit.try_acquire(ClientKind::People, "bob");
        let m = limit.try_acquire(ClientKind::CasesRead, "alice");
        assert!(b.is_some() && m.is_some());
        assert_eq!(metrics.requests_in_flight.get(), 4);
        drop(a1);
        let a3 = limit.try_acquire(ClientKind::People, "alice");
        assert!(a3.is_some(), "a place given back is taken again");
        drop((a2, a3, b, m));
        assert_eq!(limit.clients(), 0, "no entry outlives its requests");
        assert_eq!(metrics.requests_in_flight.get(), 0);
    }

    #[test]
    fn off_counts_but_never_refuses() {
        let metrics = Arc::new(Metrics::default());
        let limit = InFlight::new(None, metrics.clone());
        let permits: Vec<_> =
            (0..100).map(|_| limit.try_acquire(ClientKind::Anonymous, "::1")).collect();
        assert!(permits.iter().all(Option::is_some));
        assert_eq!(limit.clients(), 0);
        assert_eq!(metrics.requests_in_flight.get(), 100);
    }
}
