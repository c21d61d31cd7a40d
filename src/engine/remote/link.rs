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
    /// The pool's other workers compute their pieces of each training step
    /// ([`crate::engine::shards`]) besides sampling.
    pub shards: bool,
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
    shards: false,
});
/// This platform's own worker: a thread natively; none in the browser, where the web shell
/// brings its Web Worker.
#[cfg(target_arch = "wasm32")]
pub const THREAD: Option<Offload> = None;

/// What reaches a worker thread: the page's messages, its peers' ([`WorkerCore::connect`]).
#[cfg(not(target_arch = "wasm32"))]
enum Inbound {
    Page(Vec<u8>),
    Peer(usize, Vec<u8>),
    /// A peer known here as `id`, reached by `to`, where this worker is known as `me`.
    Connect {
        id: usize,
        to: std::sync::mpsc::Sender<Inbound>,
        me: usize,
    },
    /// The page let go of the worker (peers may still hold senders to it).
    Stop,
}

/// Natively: the worker is a thread, reached over channels.
#[cfg(not(target_arch = "wasm32"))]
pub struct ThreadLink {
    to: Option<std::sync::mpsc::Sender<Inbound>>,
    from: std::sync::mpsc::Receiver<Vec<u8>>,
    gone: bool,
}

#[cfg(not(target_arch = "wasm32"))]
impl ThreadLink {
    /// Start the worker thread.
    pub fn spawn() -> Result<Self, String> {
        use std::sync::mpsc::{channel, TryRecvError};
        let (to, rx) = channel::<Inbound>();
        let (tx, from) = channel::<Vec<u8>>();
        std::thread::Builder::new()
            .name("scorelab-cpu-engine".into())
            .spawn(move || {
                let mut core = WorkerCore::new();
                // Take one message; false when the worker is to end.
                let take = |core: &mut WorkerCore, m: Inbound| match m {
                    Inbound::Page(b) => {
                        core.handle(&b);
                        true
                    }
                    Inbound::Peer(id, b) => {
                        core.peer_message(id, &b);
                        true
                    }
                    Inbound::Connect { id, to, me } => {
                        core.connect(
                            id,
                            Box::new(move |b| {
                                let _ = to.send(Inbound::Peer(me, b));
                            }),
                        );
                        true
                    }
                    Inbound::Stop => false,
                };
                loop {
                    // Idle: wait for the page or a peer; busy: look between chunks.
                    let first = if core.busy() {
                        match rx.try_recv() {
                            Ok(m) => Some(m),
                            Err(TryRecvError::Empty) => None,
                            Err(TryRecvError::Disconnected) => return,
                        }
                    } else {
                        match rx.recv() {
                            Ok(m) => Some(m),
                            Err(_) => return,
                        }
                    };
                    if let Some(m) = first {
                        if !take(&mut core, m) {
                            return;
                        }
                        while let Ok(m) = rx.try_recv() {
                            if !take(&mut core, m) {
                                return;
                            }
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
            if to.send(Inbound::Page(msg)).is_err() {
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

    fn connect(&mut self, me: usize, other: &mut dyn Link, them: usize) -> bool {
        let Some(o) = other.as_any().and_then(|a| a.downcast_mut::<ThreadLink>()) else {
            return false;
        };
        let (Some(a), Some(b)) = (self.to.clone(), o.to.clone()) else {
            return false;
        };
        let sent_a = a.send(Inbound::Connect {
            id: them,
            to: b.clone(),
            me,
        });
        let sent_b = b.send(Inbound::Connect {
            id: me,
            to: a,
            me: them,
        });
        sent_a.is_ok() && sent_b.is_ok()
    }

    fn as_any(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Drop for ThreadLink {
    fn drop(&mut self) {
        // Its peers hold senders too: say so, and the thread ends at its next look.
        if let Some(to) = self.to.take() {
            let _ = to.send(Inbound::Stop);
        }
    }
}
