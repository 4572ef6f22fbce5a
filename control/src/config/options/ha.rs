//! High availability through Redis: the server, key prefix, instance name, standby mode and
//! the heartbeat and sync timing.

use super::{
    opt, with_env, Opt,
    Value::{Flag, One},
};
use crate::config::parse::{parse_bool, parse_ha_name, parse_positive_secs, parse_redis};

pub(super) static OPTIONS: &[Opt] = &[
    opt(
        "redis",
        Some('r'),
        One("[PASSWORD@]HOST:PORT[/DB]"),
        "Keep every call's state in Redis (the address in rtpengine's syntax; the stored state \
         is ngmedia's own, not rtpengine's): restored after a restart of \
         this instance, taken over by a --standby instance when this one dies. Off unless \
         given.",
        |l, v| {
            if !v.trim().is_empty() {
                l.redis = Some(parse_redis(v)?);
            }
            Ok(())
        },
    ),
    with_env(
        opt(
            "redis-password",
            None,
            One("PASSWORD"),
            "Redis password; overrides one given in --redis. Prefer the environment variable.",
            |l, v| {
                // Empty: not given (the one in `redis` stays).
                if !v.is_empty() {
                    l.redis_password = Some(v.to_string());
                }
                Ok(())
            },
        ),
        "NGMEDIA_REDIS_PASSWORD",
    ),
    opt(
        "redis-prefix",
        None,
        One("PREFIX"),
        "Prefix of every Redis key and of the events channel. Default: ngmedia.",
        |l, v| {
            l.redis_prefix = Some(parse_ha_name(v)?);
            Ok(())
        },
    ),
    opt(
        "instance-id",
        None,
        One("ID"),
        "This instance's name in Redis, logs and metrics. Default: the host name.",
        |l, v| {
            if !v.is_empty() {
                l.instance_id = Some(parse_ha_name(v)?);
            }
            Ok(())
        },
    ),
    opt(
        "standby",
        None,
        Flag,
        "Also follow the other instances in Redis and take their calls over when they die.",
        |l, v| {
            l.standby = Some(parse_bool(v)?);
            Ok(())
        },
    ),
    opt(
        "redis-heartbeat-ttl",
        None,
        One("SECS"),
        "TTL of this instance's Redis heartbeat, refreshed every third of it: a standby takes \
         over about this long after a crash. Default: 3.",
        |l, v| {
            l.redis_heartbeat_ttl = Some(parse_positive_secs(v)?);
            Ok(())
        },
    ),
    opt(
        "redis-sync-interval",
        None,
        One("SECS"),
        "How often calls' live figures (counters, latched addresses) are written to Redis. \
         Default: 1.",
        |l, v| {
            l.redis_sync_interval = Some(parse_positive_secs(v)?);
            Ok(())
        },
    ),
];
