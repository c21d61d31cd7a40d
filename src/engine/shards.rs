//! Training over batch shards (issue 32): the worker that trains (the lead) splits each
//! step's fixed pieces ([`crate::sim::train::PIECE`] samples each) over itself and the
//! pool's other workers (its helpers), which compute their pieces' shares of the loss and
//! gradient and send them back; the lead adds every piece in piece order and takes the Adam
//! step. The pieces and their order depend on the batch size only, so the weights are bit
//! for bit those of one worker, whatever the pool's size (tested in `pool::tests`).
//!
//! - Workers talk directly (a `MessageChannel` per lead–helper pair on the web, a channel
//!   natively): the page relays only on its frames. Messages are postcard bytes.
//! - A job carries the network's weights, the mixture and the training settings, so a helper
//!   keeps no training state and a drag between two steps cannot mix mixtures in a step.
//! - The lead never blocks: it computes its own pieces, then yields to its event loop until
//!   the helpers' shares arrive. A helper that has not answered within [`PEER_TIMEOUT`] is
//!   given up on: the lead computes its pieces itself (same numbers) from then on.

use std::task::Poll;

use web_time::{Duration, Instant};

use super::pool::Shard;
use crate::sim::mixture::GaussianMixture;
use crate::sim::model::{ModelFile, ScoreNet};
use crate::sim::train::{
    dsm_pieces, piece_count, Piece, PieceGrad, TrainConfig, TrainError, Trainer,
};

/// Whether a page's pool splits training steps unless its address says (`?shards=0|1`): on,
/// as measured faster (2 workers on a 2-core machine, Chromium 156, width 128, batch 1024,
/// two alternating pairs of 80-s runs: 68.5 and 67.0 steps/s against 51.4 and 54.0 with one
/// worker training and one sampling; from 50 s on, 72.1 and 67.7 against 61.1 and 60.9).
pub const BY_DEFAULT: bool = true;

/// How long the lead waits for a helper's shares before computing them itself.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(5);

/// A message between two workers of a pool.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub enum PeerMsg {
    /// Lead → helper: compute these pieces.
    Job(Box<Job>),
    /// Helper → lead: the shares of `job`'s pieces from `first` on.
    Shares {
        /// The job answered.
        job: u64,
        /// Its first piece.
        first: usize,
        /// One share per piece, in order.
        shares: Vec<PieceGrad>,
    },
}

/// Pieces `pieces` of step `step` of training `net` on `mixture` with `config`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Job {
    job: u64,
    step: u32,
    net: ModelFile,
    mixture: GaussianMixture,
    config: TrainConfig,
    pieces: (usize, usize),
}

fn encode(m: &PeerMsg) -> Vec<u8> {
    postcard::to_allocvec(m).unwrap_or_default()
}

/// Sends bytes to one peer.
pub type PeerSend = Box<dyn FnMut(Vec<u8>)>;

/// A helper's side: answers jobs.
#[derive(Default)]
pub struct Helper {
    net: Option<ScoreNet>,
    scratch: Vec<Piece>,
    /// Pieces computed since the last report.
    pub pieces: u64,
}

impl Helper {
    /// The answer to `job` (`None` if its network cannot be built).
    pub fn answer(&mut self, job: Job) -> Option<Vec<u8>> {
        let Job {
            job,
            step,
            net,
            mixture,
            config,
            pieces: (a, b),
        } = job;
        let reuse = self
            .net
            .as_ref()
            .is_some_and(|n| n.config == net.config && n.sde == net.sde);
        if reuse {
            let n = self.net.as_mut()?;
            if n.mlp.params.len() != net.params.len() {
                return None;
            }
            n.mlp.params.copy_from_slice(&net.params);
        } else {
            self.net = Some(ScoreNet::with_params(net.config, net.sde, net.params).ok()?);
        }
        let n = self.net.as_ref()?;
        let shares = dsm_pieces(n, &mixture, &config, step, a..b, &mut self.scratch);
        self.pieces += shares.len() as u64;
        Some(encode(&PeerMsg::Shares {
            job,
            first: a,
            shares,
        }))
    }
}

struct Peer {
    send: PeerSend,
    alive: bool,
}

struct Pending {
    job: u64,
    step: u32,
    shares: Vec<Option<PieceGrad>>,
    /// (peer, its pieces).
    asked: Vec<(usize, (usize, usize))>,
    since: Instant,
}

/// The lead's side: splits steps over its helpers.
#[derive(Default)]
pub struct Lead {
    peers: Vec<Peer>,
    inbox: Vec<Vec<u8>>,
    pending: Option<Pending>,
    next_job: u64,
    /// Pieces this worker computed since the last report.
    pub pieces: u64,
    /// Said once when a helper is given up on.
    pub warning: Option<String>,
}

impl Lead {
    /// A helper to split steps with.
    pub fn add_peer(&mut self, send: PeerSend) {
        self.peers.push(Peer { send, alive: true });
    }

    /// Helpers that still answer.
    pub fn helpers(&self) -> usize {
        self.peers.iter().filter(|p| p.alive).count()
    }

    /// A message from a helper.
    pub fn take(&mut self, bytes: Vec<u8>) {
        self.inbox.push(bytes);
    }

    /// A step is out and nothing has come back since the last look: training can only go on
    /// when a helper's message arrives (or the wait times out).
    pub fn waiting(&self) -> bool {
        self.pending
            .as_ref()
            .is_some_and(|p| self.inbox.is_empty() && p.since.elapsed() < PEER_TIMEOUT)
    }

    /// Forget the step in flight (its weights were replaced).
    pub fn cancel(&mut self) {
        self.pending = None;
    }

    /// The next step of `tr`: `Pending` while helpers' shares are out.
    pub fn step(&mut self, tr: &mut Trainer) -> Poll<Result<f64, TrainError>> {
        if self.pending.as_ref().is_some_and(|p| p.step != tr.steps()) {
            self.pending = None;
        }
        if self.pending.is_none() {
            let n = piece_count(tr.config.batch);
            let alive: Vec<usize> = (0..self.peers.len())
                .filter(|&k| self.peers[k].alive)
                .collect();
            if n < 2 || alive.is_empty() {
                self.pieces += n as u64;
                return Poll::Ready(tr.step());
            }
            self.start(tr, n, &alive);
        }
        self.poll(tr)
    }

    fn start(&mut self, tr: &mut Trainer, n: usize, alive: &[usize]) {
        let count = alive.len() + 1;
        let job = self.next_job;
        self.next_job += 1;
        let mut asked = Vec::new();
        for (k, &peer) in alive.iter().enumerate() {
            let r = Shard {
                index: k + 1,
                count,
            }
            .range(n);
            if r.is_empty() {
                continue;
            }
            let msg = PeerMsg::Job(Box::new(Job {
                job,
                step: tr.steps(),
                net: tr.net.to_file(0),
                mixture: tr.mixture.clone(),
                config: tr.config.clone(),
                pieces: (r.start, r.end),
            }));
            (self.peers[peer].send)(encode(&msg));
            asked.push((peer, (r.start, r.end)));
        }
        let own = Shard { index: 0, count }.range(n);
        let mut shares = vec![None; n];
        for (k, s) in own.clone().zip(tr.own_pieces(own.clone())) {
            shares[k] = Some(s);
        }
        self.pieces += own.len() as u64;
        self.pending = Some(Pending {
            job,
            step: tr.steps(),
            shares,
            asked,
            since: Instant::now(),
        });
    }

    fn poll(&mut self, tr: &mut Trainer) -> Poll<Result<f64, TrainError>> {
        let Some(p) = self.pending.as_mut() else {
            return Poll::Pending;
        };
        for bytes in self.inbox.drain(..) {
            let Ok(PeerMsg::Shares { job, first, shares }) = postcard::from_bytes(&bytes) else {
                continue;
            };
            if job != p.job {
                continue;
            }
            for (k, s) in (first..).zip(shares) {
                if let Some(slot) = p.shares.get_mut(k) {
                    *slot = Some(s);
                }
            }
        }
        if p.shares.iter().any(Option::is_none) {
            if p.since.elapsed() < PEER_TIMEOUT {
                return Poll::Pending;
            }
            // A helper that does not answer: its pieces here, from now on.
            for &(peer, (a, b)) in &p.asked {
                if p.shares[a..b].iter().any(Option::is_none) {
                    self.peers[peer].alive = false;
                    self.warning = Some(format!(
                        "a worker of the pool did not send its share of a training step within \
                         {} s; the training worker computes it itself",
                        PEER_TIMEOUT.as_secs()
                    ));
                    for (k, s) in (a..b).zip(tr.own_pieces(a..b)) {
                        p.shares[k] = Some(s);
                    }
                    self.pieces += (b - a) as u64;
                }
            }
        }
        let Some(p) = self.pending.take() else {
            return Poll::Pending;
        };
        let shares: Vec<PieceGrad> = p.shares.into_iter().flatten().collect();
        Poll::Ready(tr.step_from(&shares).unwrap_or_else(|| tr.step()))
    }
}
