//! ngmedia-control: the daemon's outside world. This library holds the ng control protocol
//! front end (bencode, typed ng requests and replies, the UDP server); the `ngmedia` binary
//! wires it to the engine.

pub mod bencode;
pub mod ng;
