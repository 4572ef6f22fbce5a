//! The persisted form of a call: everything another engine needs to relay it on the same
//! ports (legs, media, local ports, latched peers, SRTP keys and indexes, codecs, counters).
//! Versioned JSON, independent of the in-memory model so the model can change freely.

use serde::{Deserialize, Serialize};

/// Format version written by this build. A reader accepts every version up to its own.
pub const STATE_VERSION: u32 = 1;

/// Why a stored call could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("malformed call state: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("call state version {0} is newer than this build understands ({STATE_VERSION})")]
    TooNew(u32),
}

/// One call as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallState {
    pub version: u32,
    pub call_id: String,
}

impl CallState {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("call state always serialises")
    }

    pub fn decode(bytes: &[u8]) -> Result<CallState, StateError> {
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let v: Version = serde_json::from_slice(bytes)?;
        if v.version > STATE_VERSION {
            return Err(StateError::TooNew(v.version));
        }
        Ok(serde_json::from_slice(bytes)?)
    }
}
