//! Single flight: concurrent callers for the same key share one piece of work (one Backend
//! API request) instead of each starting their own.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

/// The work in progress, by key. A caller arriving while a flight is in the air waits for it
/// and gets its result; one arriving after it landed starts a new one (and, reading the table
/// first, finds what the last one wrote).
pub(crate) struct Flights<K, V> {
    in_the_air: Mutex<HashMap<K, Arc<OnceCell<V>>>>,
}

impl<K, V> Default for Flights<K, V> {
    fn default() -> Self {
        Self {
            in_the_air: Mutex::default(),
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Flights<K, V> {
    /// `work`'s result, or that of the flight already running for `key`. Should the caller
    /// running the work be cancelled, the next waiter runs it (`OnceCell` semantics).
    pub(crate) async fn run<F, Fut>(&self, key: &K, work: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let cell = Arc::clone(
            self.in_the_air
                .lock()
                .expect("not poisoned")
                .entry(key.clone())
                .or_default(),
        );
        let value = cell.get_or_init(work).await.clone();
        let mut in_the_air = self.in_the_air.lock().expect("not poisoned");
        if in_the_air
            .get(key)
            .is_some_and(|current| Arc::ptr_eq(current, &cell))
        {
            in_the_air.remove(key);
        }
        value
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.in_the_air.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn concurrent_callers_share_one_run_and_later_ones_start_another() {
        let flights: Arc<Flights<String, usize>> = Arc::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (flights, runs) = (Arc::clone(&flights), Arc::clone(&runs));
            tasks.push(tokio::spawn(async move {
                flights
                    .run(&"user_1".to_owned(), || async {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        runs.fetch_add(1, Ordering::SeqCst) + 1
                    })
                    .await
            }));
        }
        for task in tasks {
            assert_eq!(
                task.await.unwrap(),
                1,
                "every caller got the one run's result"
            );
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(flights.len(), 0, "a landed flight is forgotten");
        let again = flights
            .run(&"user_1".to_owned(), || async {
                runs.fetch_add(1, Ordering::SeqCst) + 1
            })
            .await;
        assert_eq!(again, 2);
        // Another key flies on its own.
        let other = flights.run(&"user_2".to_owned(), || async { 7 }).await;
        assert_eq!(other, 7);
    }
}
