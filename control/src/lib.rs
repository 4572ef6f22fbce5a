//! ngmedia-control: the daemon's outside world. This library holds the ng control protocol
//! front end (bencode, typed ng requests and replies, the UDP server) and the HTTP API; the
//! `ngmedia` binary wires them to the engine.

pub mod bencode;
pub mod call_control;
pub mod events;
pub mod homer;
pub mod http;
pub mod li;
pub mod load_limits;
pub mod media;
pub mod mqtt;
pub mod ng;
pub mod state_store;
pub mod tls;
