//! Redis connections with short timeouts, and the retry backoff.
//!
//! We reconnect ourselves rather than through `ConnectionManager`: every task wants to know
//! the moment a connection failed (to mark Redis down, keep its work and resynchronise later).

use std::time::Duration;

use redis::aio::{MultiplexedConnection, PubSub};
use redis::{AsyncConnectionConfig, Client, RedisError, RedisResult};

/// Connecting may take this long: an outage must never stall a task for more.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Any command or pipeline may take this long.
pub(super) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// First pause after a failure.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest pause between attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// A multiplexed connection whose connect and every response time out after a second.
pub(super) async fn connect(client: &Client) -> RedisResult<MultiplexedConnection> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(CONNECT_TIMEOUT)
        .set_response_timeout(RESPONSE_TIMEOUT);
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// A pub/sub connection, within the connect timeout (the crate has none for these).
pub(super) async fn pubsub(client: &Client) -> RedisResult<PubSub> {
    match tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub()).await {
        Ok(result) => result,
        Err(_) => Err(timed_out()),
    }
}

/// The error we report when a call outside the crate's own timeouts ran out of time.
pub(super) fn timed_out() -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "redis did not answer in time",
    ))
}

/// Pauses between retries: 100 ms, doubling up to 2 s; back to 100 ms after a success.
#[derive(Debug, Clone)]
pub(super) struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: BACKOFF_MIN }
    }
}

impl Backoff {
    /// The pause before the next attempt; each call doubles the following one.
    pub(super) fn fail(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        pause
    }

    pub(super) fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_two_seconds_and_resets() {
        let mut b = Backoff::default();
        let pauses: Vec<u64> = (0..8).map(|_| b.fail().as_millis() as u64).collect();
        assert_eq!(pauses, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
        b.reset();
        assert_eq!(b.fail(), Duration::from_millis(100));
    }
}
