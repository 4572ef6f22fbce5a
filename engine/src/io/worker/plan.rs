//! Applying the control plane's commands to the worker's sockets: install or update a call's
//! streams from its plan, resolve their sinks, and close the ports a call gives up.

use std::sync::Arc;

use tracing::{debug, warn};

use super::fax::set_gateway;
use super::transcode::{set_control, set_transcoder};
use super::{AltSocket, Core, Entry, Now, Watch};
use crate::core::latch::Latch;
use crate::core::plan::{CallKey, CallPlan, CopySink, PortKey};
use crate::core::stream::{self, key_from_dtls, rekey, CopyTarget, DtlsLink, Stream};
use crate::core::tap::{StreamTap, StreamTaps, TapSender};
use crate::core::transcode::{TranscodeSpec, Transcoder};
use crate::io::ports::BoundPort;
use crate::io::ports::Role;

/// Tap state for a stream whose plan asks for copies, when a sink is attached.
fn stream_tap(
    queue: Option<&TapSender>,
    call: CallKey,
    stream: Option<crate::core::tap::TapStream>,
) -> Option<StreamTap> {
    Some(StreamTap::new(call, stream?, queue?))
}

/// Homer's copy of a stream's RTCP, when the Homer sender is attached.
fn rtcp_tap(
    queue: Option<&TapSender>,
    call: CallKey,
    call_id: &Arc<str>,
    stream: crate::core::tap::TapStream,
) -> Option<StreamTap> {
    Some(StreamTap::new(call, stream, queue?).with_call_id(call_id.clone()))
}

/// The copy list of a stream, unresolved (slots are filled in by `resolve_sinks`).
fn copy_targets(copies: &[CopySink]) -> Vec<CopyTarget> {
    copies
        .iter()
        .map(|c| CopyTarget {
            key: c.port,
            slot: None,
            egress: c.egress,
            block: c.block,
            silence: c.silence,
        })
        .collect()
}

/// Build, keep or drop the transcoder for RTP copied to a subscriber's socket.
fn set_feed(e: &mut Entry, spec: Option<TranscodeSpec>) {
    let Some(spec) = spec.filter(|_| e.port.role == Role::Rtp) else {
        e.feed = None;
        return;
    };
    if e.feed.as_ref().is_some_and(|t| *t.spec() == spec) {
        return;
    }
    e.feed = match Transcoder::new(spec) {
        Ok(mut t) => {
            t.keep_input_ssrc();
            Some(Box::new(t))
        }
        Err(err) => {
            warn!(error = %err, "cannot build a subscriber's transcoder; copies pass unchanged");
            None
        }
    };
}

impl Core {
    pub(super) fn apply(&mut self, plan: CallPlan, mut ports: Vec<BoundPort>, w: &mut impl Watch) {
        let now = Now::read();
        let call = plan.call;
        let call_id = plan.call_id.clone();
        let tos = plan.tos;
        // Ports the call had that the new plan no longer mentions.
        let old = self.calls.remove(&call).unwrap_or_default();
        for key in old {
            if !plan
                .streams
                .iter()
                .any(|s| s.port == key || s.alternates.contains(&key))
            {
                self.close(key, w);
            }
        }
        // Each stream's sockets on the other addresses, installed once the streams are.
        let alternates: Vec<(PortKey, Vec<PortKey>)> = plan
            .streams
            .iter()
            .filter(|s| !s.alternates.is_empty())
            .map(|s| (s.port, s.alternates.clone()))
            .collect();
        let mut keys = Vec::with_capacity(plan.streams.len());
        // Slots whose T.38 gateway was just started.
        let mut gateways = Vec::new();
        for sp in plan.streams {
            if let Some(&idx) = self.by_key.get(&sp.port) {
                let Some(e) = self.slab[idx].as_mut() else {
                    continue;
                };
                if e.call != call {
                    warn!(
                        port = sp.port.0,
                        "plan names a port owned by another call; ignored"
                    );
                    continue;
                }
                if e.latch
                    .update(sp.expected, sp.latch, sp.relatch, now.mono_ms)
                {
                    sp.stats.set_endpoint(None);
                } else if !Arc::ptr_eq(&e.stats, &sp.stats) && sp.latch.learn {
                    if let Some(learned) = e.latch.learned() {
                        sp.stats.set_endpoint(Some(learned));
                    }
                }
                e.stats = sp.stats;
                match sp.dtls {
                    Some(p) if e.dtls.as_ref().is_some_and(|l| l.params == p) => {}
                    Some(p) => {
                        // New or changed association: keys come from its handshake.
                        e.dtls = DtlsLink::new(p, sp.port);
                        e.srtp_in = None;
                        e.srtp_out = None;
                        if !self.handshaking.contains(&idx) {
                            self.handshaking.push(idx);
                        }
                    }
                    None => {
                        if e.dtls.take().is_some() {
                            e.srtp_in = None;
                            e.srtp_out = None;
                        }
                        rekey(&mut e.srtp_in, sp.srtp_in, sp.port);
                        rekey(&mut e.srtp_out, sp.srtp_out, sp.port);
                    }
                }
                let before = e.ice.as_deref().and_then(|i| i.full.clone());
                e.ice = sp.ice.map(Box::new);
                if super::ice::set_agent(e, before.as_ref(), now) && !self.ice_agents.contains(&idx)
                {
                    self.ice_agents.push(idx);
                }
                e.forward = sp.forward;
                e.mode = sp.mode;
                e.rtcp_feedback = sp.rtcp_feedback;
                e.rtp_sink_key = sp.rtp_sink;
                e.rtcp_sink_key = sp.rtcp_sink;
                e.copies = copy_targets(&sp.copies);
                set_feed(e, sp.feed);
                set_transcoder(e, sp.transcode, now, self.silence_detect, self.playout);
                if e.transcoder.is_some() && self.playout.is_some() && !self.playouts.contains(&idx)
                {
                    self.playouts.push(idx);
                }
                set_control(e, sp.control, self.dtmf_digit_delay_ms);
                let delayed = e.delay.is_some();
                if set_gateway(e, sp.fax, now) {
                    gateways.push(idx);
                }
                if e.taps.record.as_ref().map(StreamTap::stream) != sp.tap {
                    e.taps.record = stream_tap(self.tap.as_ref(), call, sp.tap);
                }
                if e.taps.intercept.as_ref().map(StreamTap::stream) != sp.intercept {
                    e.taps.intercept = stream_tap(self.intercept.as_ref(), call, sp.intercept);
                }
                if e.taps.rtcp.is_some() != self.rtcp_tap.is_some() {
                    e.taps.rtcp = rtcp_tap(self.rtcp_tap.as_ref(), call, &call_id, sp.stream);
                }
                if delayed {
                    self.watch_delay(idx);
                }
            } else if let Some(pos) = ports.iter().position(|p| p.key == sp.port) {
                let port = ports.swap_remove(pos);
                let (mut srtp_in, mut srtp_out) = (None, None);
                let dtls = match sp.dtls {
                    Some(p) => DtlsLink::new(p, sp.port),
                    None => {
                        rekey(&mut srtp_in, sp.srtp_in, sp.port);
                        rekey(&mut srtp_out, sp.srtp_out, sp.port);
                        None
                    }
                };
                let has_dtls = dtls.is_some();
                let latch =
                    Latch::new(sp.expected, sp.latch, now.mono_ms).with_learning(self.learning);
                let mut stream = Stream::new(port.key, port.role, port.addr, latch, sp.stats);
                stream.srtp_in = srtp_in;
                stream.srtp_out = srtp_out;
                stream.dtls = dtls;
                stream.ice = sp.ice.map(Box::new);
                stream.forward = sp.forward;
                stream.mode = sp.mode;
                stream.rtcp_feedback = sp.rtcp_feedback;
                stream.rtp_sink_key = sp.rtp_sink;
                stream.rtcp_sink_key = sp.rtcp_sink;
                stream.taps = StreamTaps {
                    record: stream_tap(self.tap.as_ref(), call, sp.tap),
                    intercept: stream_tap(self.intercept.as_ref(), call, sp.intercept),
                    rtcp: rtcp_tap(self.rtcp_tap.as_ref(), call, &call_id, sp.stream),
                };
                stream.copies = copy_targets(&sp.copies);
                stream.dtmf_sock = self.dtmf_sock.clone();
                let mut entry = Entry::new(port, call, stream);
                set_feed(&mut entry, sp.feed);
                // A stream taken over from stored state continues where it was; its DTLS
                // association is keyed already, so no handshake is started.
                let mut handshake = has_dtls;
                if let Some(from) = sp.resume {
                    if let (true, Some(keys)) = (has_dtls, from.dtls_keys.clone()) {
                        key_from_dtls(&mut entry, keys);
                        handshake = false;
                    }
                    let e = &mut *entry;
                    stream::resume(&mut e.srtp_in, &mut e.srtp_out, &from);
                    if let Some(addr) = from.latched {
                        entry.latch.resume(addr);
                    }
                }
                set_transcoder(
                    &mut entry,
                    sp.transcode,
                    now,
                    self.silence_detect,
                    self.playout,
                );
                set_control(&mut entry, sp.control, self.dtmf_digit_delay_ms);
                let delayed = entry.delay.is_some();
                let gateway = set_gateway(&mut entry, sp.fax, now);
                let idx = self.free.pop().unwrap_or(self.slab.len());
                if let Err(e) = w.watch(idx, entry.port.raw_fd()) {
                    warn!(port = sp.port.0, error = %e, "cannot watch media socket; port closed");
                    if idx < self.slab.len() {
                        self.free.push(idx);
                    }
                    continue;
                }
                if idx == self.slab.len() {
                    self.slab.push(Some(entry));
                } else {
                    self.slab[idx] = Some(entry);
                }
                self.by_key.insert(sp.port, idx);
                let timed = matches!(&self.slab[idx], Some(e) if e.transcoder.is_some());
                if timed && self.playout.is_some() && !self.playouts.contains(&idx) {
                    self.playouts.push(idx);
                }
                if gateway {
                    gateways.push(idx);
                }
                if handshake && !self.handshaking.contains(&idx) {
                    self.handshaking.push(idx);
                }
                if delayed {
                    self.watch_delay(idx);
                }
                if let Some(Some(e)) = self.slab.get_mut(idx) {
                    if super::ice::set_agent(e, None, now) && !self.ice_agents.contains(&idx) {
                        self.ice_agents.push(idx);
                    }
                }
            } else {
                warn!(
                    port = sp.port.0,
                    "plan names a port that was never allocated; ignored"
                );
                continue;
            }
            if let Some(e) = self
                .by_key
                .get(&sp.port)
                .and_then(|&i| self.slab[i].as_mut())
            {
                e.alt_keys = sp.alternates;
            }
            if !keys.contains(&sp.port) {
                keys.push(sp.port);
            }
        }
        for (primary, alts) in alternates {
            self.install_alternates(call, primary, &alts, &mut ports, &mut keys, now, w);
        }
        // `ports` is empty unless the plan named a port twice; leftovers are closed on drop.
        drop(ports);
        for key in &keys {
            let Some(e) = self.by_key.get(key).and_then(|&i| self.slab[i].as_mut()) else {
                continue;
            };
            if e.tos != tos {
                match crate::io::sys::set_tos(e.port.raw_fd(), e.port.addr.is_ipv6(), tos) {
                    Ok(()) => e.tos = tos,
                    Err(err) => warn!(port = key.0, error = %err, tos, "cannot set TOS"),
                }
            }
        }
        self.calls.insert(call, keys);
        self.resolve_sinks(call);
        for idx in gateways {
            self.start_gateway(idx, now);
        }
        debug!(call = call.0, "media plan applied");
        // Clients with a known party start their handshake now.
        self.handle_timers();
    }

    /// Install the sockets `alts` of the stream whose primary socket is `primary` (see
    /// `StreamPlan::alternates`): new ones start receiving, handled by the primary's state.
    #[allow(clippy::too_many_arguments)]
    fn install_alternates(
        &mut self,
        call: CallKey,
        primary: PortKey,
        alts: &[PortKey],
        ports: &mut Vec<BoundPort>,
        keys: &mut Vec<PortKey>,
        now: Now,
        w: &mut impl Watch,
    ) {
        let Some(stats) = self
            .by_key
            .get(&primary)
            .and_then(|&i| self.slab[i].as_ref())
            .filter(|e| e.call == call)
            .map(|e| e.stats.clone())
        else {
            // The primary was refused; its alternates go with it.
            return;
        };
        for &key in alts {
            if let Some(&idx) = self.by_key.get(&key) {
                match self.slab[idx].as_mut() {
                    Some(e) if e.call == call => e.alias_of = Some((primary, None)),
                    _ => continue,
                }
            } else if let Some(pos) = ports.iter().position(|p| p.key == key) {
                let port = ports.swap_remove(pos);
                let latch = Latch::new(None, Default::default(), now.mono_ms);
                let stream = Stream::new(port.key, port.role, port.addr, latch, stats.clone());
                let mut entry = Entry::new(port, call, stream);
                entry.alias_of = Some((primary, None));
                let idx = self.free.pop().unwrap_or(self.slab.len());
                if let Err(e) = w.watch(idx, entry.port.raw_fd()) {
                    warn!(port = key.0, error = %e, "cannot watch media socket; port closed");
                    if idx < self.slab.len() {
                        self.free.push(idx);
                    }
                    continue;
                }
                if idx == self.slab.len() {
                    self.slab.push(Some(entry));
                } else {
                    self.slab[idx] = Some(entry);
                }
                self.by_key.insert(key, idx);
            } else {
                warn!(
                    port = key.0,
                    "plan names a port that was never allocated; ignored"
                );
                continue;
            }
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }

    pub(super) fn release(&mut self, keys: &[PortKey], w: &mut impl Watch) {
        for key in keys {
            let Some(&idx) = self.by_key.get(key) else {
                continue;
            };
            let Some(call) = self.slab[idx].as_ref().map(|e| e.call) else {
                continue;
            };
            self.close(*key, w);
            if let Some(list) = self.calls.get_mut(&call) {
                list.retain(|k| k != key);
            }
            self.resolve_sinks(call);
        }
    }

    /// Point each port of the call at the slab slots of its sinks (within the same call).
    fn resolve_sinks(&mut self, call: CallKey) {
        let Some(keys) = self.calls.get(&call) else {
            return;
        };
        for key in keys {
            let Some(&idx) = self.by_key.get(key) else {
                continue;
            };
            let (rtp_key, rtcp_key) = match &self.slab[idx] {
                Some(e) => (e.rtp_sink_key, e.rtcp_sink_key),
                None => continue,
            };
            let resolve = |k: Option<PortKey>| {
                let k = k?;
                keys.contains(&k)
                    .then(|| self.by_key.get(&k).copied())
                    .flatten()
            };
            let (rtp, rtcp) = (resolve(rtp_key), resolve(rtcp_key));
            // Alternate sockets and their primary find each other.
            let alias_of = self.slab[idx]
                .as_ref()
                .and_then(|e| e.alias_of)
                .map(|(k, _)| (k, resolve(Some(k))));
            let alts: Vec<AltSocket> = self.slab[idx].as_ref().map_or(Vec::new(), |e| {
                e.alt_keys
                    .iter()
                    .filter_map(|&k| {
                        let slot = resolve(Some(k))?;
                        let a = self.slab[slot].as_ref()?;
                        Some(AltSocket {
                            slot,
                            fd: a.port.raw_fd(),
                            v6: a.port.addr.is_ipv6(),
                        })
                    })
                    .collect()
            });
            let copies = self.slab[idx].as_ref().map_or(0, |e| e.copies.len());
            for j in 0..copies {
                let key = self.slab[idx].as_ref().map(|e| e.copies[j].key);
                let slot = resolve(key);
                if let Some(e) = self.slab[idx].as_mut() {
                    e.copies[j].slot = slot;
                }
            }
            if let Some(e) = self.slab[idx].as_mut() {
                e.rtp_sink = rtp;
                e.rtcp_sink = rtcp;
                e.alias_of = alias_of;
                if e.alts != alts {
                    e.alts = alts;
                    e.via = None;
                }
            }
        }
    }

    pub(super) fn close(&mut self, key: PortKey, w: &mut impl Watch) {
        let Some(idx) = self.by_key.remove(&key) else {
            return;
        };
        if let Some(entry) = self.slab[idx].take() {
            if let Some(entry) = w.unwatch(idx, entry) {
                self.free.push(idx);
                // Dropping the entry closes the socket and returns the port to the pool.
                drop(entry);
            }
        }
    }
}
