//! Background work: every task the service runs besides answering requests is started through
//! one [`Spawner`] and stopped through one [`Workers`], in the order
//! [`crate::state::AppState::shut_down`] documents.
//!
//! The tasks: the ingest writer, the ranking worker and its Prometheus pulls, the automation
//! runner and each run it carries out, the notifier and each notification, training jobs, and
//! the timers (API tokens, metrics upkeep, topology refresh, SQLite checkpoints, the reading of
//! the fault history for risks). Each watches the one
//! cancellation token and stops at its next await point once shutdown begins; the tracker
//! knows when the last one has ended.
//!
//! A task cut short loses nothing acknowledged: an automation run stays unfinished in the store
//! and the next process carries it on; a training job is recorded as interrupted; a
//! notification is not retried (the audit log says it was not delivered); the writer is not
//! cancelled at all but drains its queue once the last intake handle is gone.

use std::future::Future;

use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};
use tokio_util::task::TaskTracker;

/// Starts background tasks: cheap to clone, handed to every part of the service that runs some.
///
/// A task started here is awaited at shutdown, so it must end once [`Spawner::cancelled`]
/// completes (or, for the ingest writer, once its queue closes).
#[derive(Debug, Clone)]
pub struct Spawner {
    tracker: TaskTracker,
    cancel: CancellationToken,
}

impl Spawner {
    /// Runs `task` in the background, tracked until it ends.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(task);
    }

    /// Completes when shutdown begins.
    pub fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        self.cancel.cancelled()
    }

    /// A token cancelled when shutdown begins, for a task that outlives this handle's borrow
    /// (an event stream). A child: cancelling it stops nobody else.
    pub fn token(&self) -> CancellationToken {
        self.cancel.child_token()
    }
}

/// Owns the background tasks of a running service.
#[derive(Debug)]
pub struct Workers {
    spawner: Spawner,
}

impl Default for Workers {
    fn default() -> Workers {
        Workers::new()
    }
}

impl Workers {
    /// No tasks yet: start them with [`Workers::spawner`].
    pub fn new() -> Workers {
        Workers {
            spawner: Spawner {
                tracker: TaskTracker::new(),
                cancel: CancellationToken::new(),
            },
        }
    }

    /// A handle that starts tasks owned by these workers.
    pub fn spawner(&self) -> Spawner {
        self.spawner.clone()
    }

    /// Begins shutdown: every task sees the token (timers, the automation runner and its runs,
    /// the notifier, training jobs, Prometheus pulls, the ranking worker and the live event
    /// streams, which would otherwise hold the HTTP server's graceful shutdown open).
    pub fn cancel(&self) {
        self.spawner.cancel.cancel();
    }

    /// The token whose cancellation begins shutdown, for the signal handler that decides when.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.spawner.cancel.clone()
    }

    /// Whether no task is running.
    pub fn is_empty(&self) -> bool {
        self.spawner.tracker.is_empty()
    }

    /// Waits until every task has ended; no task can be started after this is called.
    /// [`crate::state::AppState::shut_down`] calls it in its place in the shutdown order.
    pub async fn wait(self) {
        self.spawner.tracker.close();
        self.spawner.tracker.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tasks_see_the_token_and_are_tracked_until_they_end() {
        let workers = Workers::new();
        let spawner = workers.spawner();
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let watcher = spawner.clone();
        spawner.spawn(async move {
            watcher.cancelled().await;
            let _ = sender.send(());
        });
        assert!(!workers.is_empty());
        workers.cancel();
        receiver.await.unwrap();
        let spawner = workers.spawner();
        workers.wait().await;
        assert!(spawner.tracker.is_empty());
    }
}
