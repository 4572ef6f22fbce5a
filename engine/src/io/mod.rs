//! Thin IO around the sans-IO core: media sockets and the worker threads that move packets.
