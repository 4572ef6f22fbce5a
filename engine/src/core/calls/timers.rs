//! Time-driven ends of calls: idle, silent and final timeouts, deleted calls and branches
//! purged after their delay, and every call torn down at shutdown.

use std::time::Duration;

use tracing::{debug, info};

use super::model::{Call, LegId};
use super::{report, CallEvent, Calls, Now};
use crate::core::pii::Pii;

impl Calls {
    /// Timers: idle/silent/final timeouts and purging deleted calls. Call about once a second.
    pub fn tick(&mut self, now: Now) -> Vec<CallEvent> {
        self.started.get_or_insert(now.mono);
        let now_ms = now.unix_us / 1000;
        let mut ended = Vec::new();
        for (id, call) in &mut self.calls {
            report::refresh_rtt(call);
            // Branches deleted with a delay whose time has come.
            let due: Vec<LegId> = (0..call.legs.len())
                .rev()
                .map(LegId)
                .filter(|&l| call.leg(l).delete_at.is_some_and(|at| now.mono >= at))
                .collect();
            if !due.is_empty() {
                for leg in due {
                    call.remove_leg(leg);
                }
                let plan = call.plan();
                self.media.apply(plan);
                Self::save(&self.store, call, now);
                debug!(call_id = %Pii(id), "deleted call branch purged");
            }
            if let Some(at) = call.delete_at {
                if now.mono >= at {
                    ended.push((id.clone(), None));
                }
                continue;
            }
            let age = now.mono.saturating_duration_since(call.created);
            if !self.config.final_timeout.is_zero() && age >= self.config.final_timeout {
                ended.push((id.clone(), Some("final timeout")));
                continue;
            }
            // Idle time: since the last packet, or since the last signalling if none came later.
            let since_packet = match call.last_packet_ms() {
                0 => Duration::MAX,
                ms => Duration::from_millis(now_ms.saturating_sub(ms)),
            };
            let idle = since_packet.min(now.mono.saturating_duration_since(call.last_signal_at));
            let (limit, reason) = if call.all_on_hold() {
                (self.config.silent_timeout, "silent timeout")
            } else {
                (self.config.timeout, "timeout")
            };
            if !limit.is_zero() && idle >= limit {
                ended.push((id.clone(), Some(reason)));
            }
        }
        let mut events = Vec::with_capacity(ended.len());
        for (id, reason) in ended {
            let mut call = self.calls.remove(&id).expect("listed above");
            Self::stop_recording(&self.recorder, &mut call, now);
            self.intercept_ended(&call);
            self.media.remove(call.key);
            match reason {
                Some(reason) => {
                    self.unpersist(&id);
                    self.totals.timed_out += 1;
                    match reason {
                        "silent timeout" => self.totals.silent_timeout += 1,
                        "final timeout" => self.totals.final_timeout += 1,
                        _ => {}
                    }
                    self.totals.ended(&call, now);
                    info!(call_id = %Pii(&id), reason, "call ended by timer");
                    events.push(CallEvent::TimedOut {
                        call_id: id,
                        reason,
                    });
                }
                None => events.push(CallEvent::Purged { call_id: id }),
            }
        }
        events
    }

    /// Tear every call down (daemon shutdown). With a store the calls are not ended: their
    /// final state is saved for the engine that takes them over (restart, standby). Returns
    /// how many calls were left in the store that way.
    pub fn shutdown(&mut self, now: Now) -> usize {
        let calls: Vec<(String, Call)> = self.calls.drain().collect();
        let mut handed_over = 0;
        for (id, mut call) in calls {
            let hand_over = self.store.is_some() && call.delete_at.is_none();
            if hand_over {
                Self::save(&self.store, &mut call, now);
                handed_over += 1;
            }
            Self::stop_recording(&self.recorder, &mut call, now);
            self.intercept_ended(&call);
            self.media.remove(call.key);
            if hand_over {
                info!(call_id = %Pii(&id), "call left in the store at shutdown");
            } else {
                info!(call_id = %Pii(&id), "call closed at shutdown");
            }
        }
        handed_over
    }
}
