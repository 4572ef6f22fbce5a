//! ngmedia-recordings: sinks that take copies of media off the packet path.
