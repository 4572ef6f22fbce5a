//! Network options: the media interfaces and their port range, the ng listeners (UDP, TCP,
//! HTTP, HTTPS/WebSocket) with their token, certificates and rate limit, and the TOS byte.

use std::path::PathBuf;

use super::{
    opt, with_env, Opt,
    Value::{Many, One},
};
use crate::config::parse::{
    parse_http_ng, parse_interface, parse_listen, parse_ng_rate_limit, parse_port, parse_tos,
};

pub(super) static OPTIONS: &[Opt] = &[
    // --- media interfaces ---
    opt(
        "interface",
        Some('i'),
        Many("[NAME/]ADDR[!ADV]"),
        "Media interface: ADDR, NAME/ADDR, optionally with !ADVERTISED for 1:1 NAT \
         (e.g. `pub/203.0.113.1!198.51.100.1`, `2001:db8::5`). ADDR may also be a network \
         device (`eth0`: its IPv4 and IPv6 addresses, link-local ones left out, as if each had \
         its own --interface), `any` (every address of every device that is up but loopback) \
         or a host name (resolved once at start-up); !ADVERTISED then applies to the \
         addresses of its own family. Repeat for several interfaces; the name (default \
         `default`) is what the ng `direction` and `interface` keys select. Given on the \
         command line, the list replaces the file's whole list. Default: 127.0.0.1.",
        |l, v| {
            l.interfaces
                .get_or_insert_with(Vec::new)
                .push(parse_interface(v)?);
            Ok(())
        },
    ),
    // --- ng listeners ---
    opt(
        "listen-ng",
        Some('n'),
        Many("[ADDR:]PORT"),
        "UDP address for the ng control protocol, [ADDR:]PORT; a bare port listens on \
         127.0.0.1, IPv6 as `[::1]:2223`. Default: 127.0.0.1:2223.",
        |l, v| {
            let addr = parse_listen(v)?;
            match l.listen_ng {
                Some(first) if first != addr => l.notes.push(format!(
                    "listen-ng: ngmedia listens on one address, {first}; {addr} is not used"
                )),
                _ => l.listen_ng = Some(addr),
            }
            Ok(())
        },
    ),
    opt(
        "listen-http",
        None,
        Many("[ADDR:]PORT"),
        "TCP address for the HTTP API (metrics, calls, OpenAPI at /openapi.json), \
         [ADDR:]PORT; a bare port listens on 127.0.0.1. Any address other than loopback needs \
         --http-token. Default: 127.0.0.1:8080.",
        |l, v| {
            let addr = parse_listen(v)?;
            match l.listen_http {
                Some(first) if first != addr => l.notes.push(format!(
                    "listen-http: ngmedia listens on one address, {first}; {addr} is not used"
                )),
                _ => l.listen_http = Some(addr),
            }
            Ok(())
        },
    ),
    with_env(
        opt(
            "http-token",
            None,
            One("TOKEN"),
            "Bearer token that HTTP writes (POST, PUT, PATCH, DELETE) must carry in \
             `Authorization: Bearer TOKEN`; reads stay open. Without a token the HTTP API only \
             listens on loopback. The environment variable wins over the file. Prefer it or \
             the config file: a command line is visible to every local user.",
            |l, v| {
                l.http_token = Some(v.to_string());
                Ok(())
            },
        ),
        "NGMEDIA_HTTP_TOKEN",
    ),
    opt(
        "listen-tcp-ng",
        Some('N'),
        Many("[ADDR:]PORT"),
        "TCP address for the ng protocol over TCP (messages back to back, as over UDP), \
         [ADDR:]PORT; a bare port listens on 127.0.0.1. Off unless given.",
        |l, v| {
            // Empty stands for "off" (the sample file documents it so).
            if v.trim().is_empty() {
                return Ok(());
            }
            let addr = parse_listen(v)?;
            match l.listen_tcp_ng {
                Some(first) if first != addr => l.notes.push(format!(
                    "listen-tcp-ng: ngmedia listens on one address, {first}; {addr} is not used"
                )),
                _ => l.listen_tcp_ng = Some(addr),
            }
            Ok(())
        },
    ),
    opt(
        "ng-rate-limit",
        None,
        One("INT"),
        "Most ng requests a second from one client address, over every transport; requests \
         beyond it get no reply (counted in ngmedia_ng_rate_limited_total, logged once a \
         minute per source), while retransmissions answered from the cookie cache always \
         pass. A client may burst one second's worth. 0: no limit. Default: 20000.",
        |l, v| {
            l.ng_rate_limit = Some(parse_ng_rate_limit(v)?);
            Ok(())
        },
    ),
    opt(
        "listen-https",
        None,
        Many("[ADDR:]PORT"),
        "TCP address of an HTTPS listener: the HTTP API, POST /ng and ng over secure \
         WebSocket (Kamailio's wss://), over TLS. Needs --https-cert and --https-key, and like \
         --listen-http an --http-token unless on loopback. Off unless given.",
        |l, v| {
            // Empty stands for "off" (the sample file documents it so).
            if v.trim().is_empty() {
                return Ok(());
            }
            let addr = parse_listen(v)?;
            match l.listen_https {
                Some(first) if first != addr => l.notes.push(format!(
                    "listen-https: ngmedia listens on one address, {first}; {addr} is not used"
                )),
                _ => l.listen_https = Some(addr),
            }
            Ok(())
        },
    ),
    opt(
        "https-cert",
        None,
        One("FILE"),
        "PEM certificate (chain) of the HTTPS listener.",
        |l, v| {
            l.https_cert = (!v.is_empty()).then(|| PathBuf::from(v));
            Ok(())
        },
    ),
    opt(
        "https-key",
        None,
        One("FILE"),
        "PEM private key for --https-cert.",
        |l, v| {
            l.https_key = (!v.is_empty()).then(|| PathBuf::from(v));
            Ok(())
        },
    ),
    opt(
        "http-ng",
        None,
        One("open|token|off"),
        "ng over HTTP(S) and WebSocket (POST /ng, /ng-plain, subprotocols ng.rtpengine.com \
         and ng-plain.rtpengine.com): `open` (no credential, like the ng UDP port and \
         rtpengine; Kamailio's WebSocket client cannot send one), `token` (needs the \
         --http-token bearer token) or `off`. Default: open.",
        |l, v| {
            l.http_ng = Some(parse_http_ng(v)?);
            Ok(())
        },
    ),
    // --- media ports and packets ---
    opt(
        "port-min",
        Some('m'),
        One("PORT"),
        "Lowest media port (even: RTP takes the even port, RTCP the odd one above). \
         Default: 30000.",
        |l, v| {
            l.port_min = Some(parse_port(v)?);
            Ok(())
        },
    ),
    opt(
        "port-max",
        Some('M'),
        One("PORT"),
        "Highest media port; the range must hold at least 4 ports. Default: 40000.",
        |l, v| {
            l.port_max = Some(parse_port(v)?);
            Ok(())
        },
    ),
    opt(
        "tos",
        Some('T'),
        One("TOS"),
        "TOS byte (DSCP << 2) on media sockets, e.g. 184 for EF; the ng `TOS` key of an \
         offer overrides it per call, and an offer without the key goes back to this value. \
         Default: 0 (the kernel's default).",
        |l, v| {
            l.tos = Some(parse_tos(v)?);
            Ok(())
        },
    ),
];
