//! The links between the page's [`RemoteEngine`](super::RemoteEngine) and its worker: the
//! shell's [`Offload`], this platform's own ([`THREAD`]), and a link that failed to start.

use super::Link;
#[cfg(not(target_arch = "wasm32"))]
use super::WorkerCore;

/// A worker that could not start: the engine falls back at its first frame and says why.
pub struct FailedLink(pub String);

impl Link for FailedLink {
    fn send(&mut self, _msg: Vec<u8>) {}

    fn receive(&mut self) -> Vec<Vec<u8>> {
        Vec::new()
    }

    fn failed(&mut self) -> Option<String> {
        Some(self.0.clone())
    }
}

/// How a shell starts the CPU engine's worker: `start` makes the link, `place` says where the
/// engine then runs ("worker", "thread"). The shell hands it to [`super::start`] (the web
/// shell its Web Worker; natively [`THREAD`]), so the engine never reaches up
/// into a shell.
#[derive(Clone, Copy, Debug)]
pub struct Offload {
    /// Start the worker.
    pub start: fn() -> Result<Box<dyn Link>, String>,
    /// Where the engine runs behind the link.
    pub place: crate::engine::RunsOn,
    /// Workers in the pool (1: one worker trains and samples; more: [`crate::engine::pool`]).
    pub workers: usize,
}

impl Offload {
    /// One worker that trains and samples (the CPU half of a CPU/GPU split engine).
    pub fn single(self) -> Self {
        Self { workers: 1, ..self }
    }

    /// The link to a new worker, or one that fails at the first frame with the reason.
    pub fn link(self) -> (Box<dyn Link>, crate::engine::RunsOn) {
        match (self.start)() {
            Ok(l) => (l, self.place),
            Err(e) => (Box::new(FailedLink(e)), self.place),
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn spawn_thread() -> Result<Box<dyn Link>, String> {
    ThreadLink::spawn().map(|l| Box::new(l) as Box<dyn Link>)
}

/// This platform's own worker: a thread natively; none in the browser, where the web shell
/// brings its Web Worker.
#[cfg(not(target_arch = "wasm32"))]
pub const THREAD: Option<Offload> = Some(Offload {
    start: spawn_thread,
    place: crate::engine::RunsOn::Thread,
    workers: 1,
});
/// This platform's own worker: a thread natively; none in the browser, where the web shell
/// brings its Web Worker.
#[cfg(target_arch = "wasm32")]
pub const THREAD: Option<Offload> = None;

/// Natively: the worker is a thread, reached over channels.
#[cfg(not(target_arch = "wasm32"))]
pub struct ThreadLink {
    to: Option<std::sync::mpsc::Sender<Vec<u8>>>,
    from: std::sync::mpsc::Receiver<Vec<u8>>,
    gone: bool,
}

#[cfg(not(target_arch = "wasm32"))]
impl ThreadLink {
    /// Start the worker thread.
    pub fn spawn() -> Result<Self, String> {
        use std::sync::mpsc::{channel, RecvError, TryRecvError};
        let (to, rx) = channel::<Vec<u8>>();
        let (tx, from) = channel::<Vec<u8>>();
        std::thread::Builder::new()
            .name("scorelab-cpu-engine".into())
            .spawn(move || {
                let mut core = WorkerCore::new();
                loop {
                    // Idle: wait for the page; busy: look at the messages between chunks.
                    let first = if core.busy() {
                        match rx.try_recv() {
                            Ok(m) => Some(m),
                            Err(TryRecvError::Empty) => None,
                            Err(TryRecvError::Disconnected) => return,
                        }
                    } else {
                        match rx.recv() {
                            Ok(m) => Some(m),
                            Err(RecvError) => return,
                        }
                    };
                    if let Some(m) = first {
                        core.handle(&m);
                        while let Ok(m) = rx.try_recv() {
                            core.handle(&m);
                        }
                    }
                    if let Some(report) = core.pump() {
                        if tx.send(report).is_err() {
                            return;
                        }
                    }
                }
            })
            .map_err(|e| format!("cannot start the engine thread: {e}"))?;
        Ok(Self {
            to: Some(to),
            from,
            gone: false,
        })
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Link for ThreadLink {
    fn send(&mut self, msg: Vec<u8>) {
        if let Some(to) = &self.to {
            if to.send(msg).is_err() {
                self.gone = true;
            }
        }
    }

    fn receive(&mut self) -> Vec<Vec<u8>> {
        use std::sync::mpsc::TryRecvError;
        let mut got = Vec::new();
        loop {
            match self.from.try_recv() {
                Ok(m) => got.push(m),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.gone = true;
                    break;
                }
            }
        }
        got
    }

    fn failed(&mut self) -> Option<String> {
        self.gone.then(|| "the engine thread stopped".to_string())
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Drop for ThreadLink {
    fn drop(&mut self) {
        // Dropping the sender ends the thread's loop at its next look at the channel.
        self.to = None;
    }
}
