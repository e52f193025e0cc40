//! Threads for `serve`'s connections, one single-threaded runtime each.
//!
//! Relaying one packet wakes several tasks in turn (the jump session, the inner session,
//! the bridge, the upstream session). On a work-stealing runtime those wake-ups often
//! cross threads, and on a small machine the context switches cost more CPU than the
//! crypto. So each connection lives on one worker thread with all the tasks it spawns, and
//! connections are spread over the workers (one per CPU), the least busy first.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::sync::mpsc;

/// Builds a connection's future on its worker, so that the sockets it opens or adopts
/// register with that worker's reactor.
pub type Job = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

struct Worker {
    jobs: mpsc::UnboundedSender<Job>,
    /// Connections running on this worker.
    load: Arc<AtomicUsize>,
}

pub struct Workers {
    workers: Vec<Worker>,
}

impl Workers {
    /// Starts `count` worker threads (at least one).
    pub fn start(count: usize) -> Result<Workers> {
        let mut workers = Vec::new();
        for index in 0..count.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start a worker runtime")?;
            let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
            std::thread::Builder::new()
                .name(format!("ec2sp-worker-{index}"))
                .spawn(move || {
                    runtime.block_on(async move {
                        while let Some(job) = queue.recv().await {
                            tokio::spawn(job());
                        }
                    });
                    // `serve` is over: whatever is still running ends with the process.
                    runtime.shutdown_background();
                })
                .context("cannot start a worker thread")?;
            workers.push(Worker {
                jobs,
                load: Arc::new(AtomicUsize::new(0)),
            });
        }
        Ok(Workers { workers })
    }

    /// One worker per CPU.
    pub fn per_cpu() -> Result<Workers> {
        Workers::start(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// Runs a connection on the least busy worker.
    pub fn run(&self, job: Job) -> Result<()> {
        let loads: Vec<usize> = self
            .workers
            .iter()
            .map(|w| w.load.load(Ordering::Relaxed))
            .collect();
        let worker = &self.workers[least_busy(&loads)];
        let load = worker.load.clone();
        load.fetch_add(1, Ordering::Relaxed);
        let counted: Job = Box::new(move || {
            let connection = job();
            Box::pin(async move {
                let _done = Finished(load);
                connection.await;
            })
        });
        worker
            .jobs
            .send(counted)
            .map_err(|_| anyhow::anyhow!("a worker thread has stopped"))
    }
}

/// Lowers a worker's load when its connection ends, however it ends.
struct Finished(Arc<AtomicUsize>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The index of the smallest load; the first of equals, so an idle proxy keeps using one
/// thread.
pub fn least_busy(loads: &[usize]) -> usize {
    loads
        .iter()
        .enumerate()
        .min_by_key(|(index, load)| (**load, *index))
        .map_or(0, |(index, _)| index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_least_busy_worker_wins_and_ties_go_to_the_first() {
        assert_eq!(least_busy(&[3, 1, 2]), 1);
        assert_eq!(least_busy(&[0, 0]), 0);
        assert_eq!(least_busy(&[2, 2, 1, 1]), 2);
        assert_eq!(least_busy(&[]), 0);
    }

    #[test]
    fn a_connection_runs_on_a_worker_thread_and_its_tasks_stay_there() {
        let workers = Workers::start(2).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        workers
            .run(Box::new(move || {
                Box::pin(async move {
                    let outer = std::thread::current().name().map(str::to_string);
                    let inner =
                        tokio::spawn(async { std::thread::current().name().map(str::to_string) })
                            .await
                            .unwrap();
                    tx.send((outer, inner)).unwrap();
                })
            }))
            .unwrap();
        let (outer, inner) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(outer.as_deref(), Some("ec2sp-worker-0"));
        assert_eq!(inner, outer);
    }

    #[test]
    fn loads_spread_connections_and_fall_when_they_end() {
        let workers = Workers::start(2).unwrap();
        let (release, hold) = tokio::sync::watch::channel(false);
        let (started, seen) = std::sync::mpsc::channel();
        for _ in 0..2 {
            let (mut hold, started) = (hold.clone(), started.clone());
            workers
                .run(Box::new(move || {
                    Box::pin(async move {
                        let name = std::thread::current().name().map(str::to_string);
                        started.send(name).unwrap();
                        let _ = hold.wait_for(|go| *go).await;
                    })
                }))
                .unwrap();
        }
        let mut names: Vec<_> = (0..2)
            .map(|_| seen.recv_timeout(Duration::from_secs(5)).unwrap().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["ec2sp-worker-0", "ec2sp-worker-1"]);
        release.send(true).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while workers
            .workers
            .iter()
            .any(|w| w.load.load(Ordering::Relaxed) != 0)
        {
            assert!(std::time::Instant::now() < deadline, "loads never fell");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
