//! ngmedia's fuzz entry points, one per target (see `targets`).
pub mod targets;
