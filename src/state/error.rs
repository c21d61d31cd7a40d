//! Why a state, a share link, a scene, a `setConfig` patch or an imported file is refused:
//! one error type for the state layer, whose message is what the user reads.

use crate::engine::settings::table::OutOfRange;
use crate::sim::mixture::MixtureError;

/// A refused state or input.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum StateError {
    /// A number outside its settings row's range (`engine::settings::table`).
    #[error(transparent)]
    OutOfRange(#[from] OutOfRange),
    /// The mixture does not validate.
    #[error(transparent)]
    Mixture(#[from] MixtureError),
    /// A JSON text over the size limit.
    #[error("the JSON text is {bytes} bytes; at most {max} are accepted")]
    TooLong {
        /// Its length.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// Text that is not the JSON expected (serde's message).
    #[error("invalid JSON: {0}")]
    Json(String),
    /// Anything else refused, said in words.
    #[error("{0}")]
    Refused(String),
    /// An error with where it happened in front: `setConfig: …`, `sampler 1: …`, a file's name.
    #[error("{0}: {1}")]
    In(String, Box<StateError>),
}

impl StateError {
    /// This error, said to have happened in `context`.
    pub fn within(self, context: impl Into<String>) -> Self {
        StateError::In(context.into(), Box::new(self))
    }

    /// The innermost error (what was wrong, without where).
    pub fn cause(&self) -> &StateError {
        match self {
            StateError::In(_, e) => e.cause(),
            e => e,
        }
    }
}

impl From<String> for StateError {
    fn from(s: String) -> Self {
        StateError::Refused(s)
    }
}

impl From<&str> for StateError {
    fn from(s: &str) -> Self {
        StateError::Refused(s.to_string())
    }
}

impl From<StateError> for String {
    fn from(e: StateError) -> String {
        e.to_string()
    }
}
