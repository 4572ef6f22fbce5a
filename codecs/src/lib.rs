//! ngmedia-codecs: audio codecs, frames in, frames out.
