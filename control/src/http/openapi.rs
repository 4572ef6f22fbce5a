//! The OpenAPI 3.1 description served at `/openapi.json`, written by hand.
//!
//! [`ROUTES`] is the single list of what the router serves; tests check that the router and
//! this document agree on it, so a new route cannot ship undocumented.

use serde_json::{json, Map, Value};

/// One served path and its methods (lowercase, as OpenAPI spells them).
#[derive(Debug, Clone, Copy)]
pub(super) struct Route {
    pub path: &'static str,
    pub methods: &'static [&'static str],
}

/// Every route of the API.
pub(super) const ROUTES: &[Route] = &[
    Route {
        path: "/",
        methods: &["get"],
    },
    Route {
        path: "/ui/status.js",
        methods: &["get"],
    },
    Route {
        path: "/ui/status.css",
        methods: &["get"],
    },
    Route {
        path: "/health",
        methods: &["get"],
    },
    Route {
        path: "/calls",
        methods: &["get"],
    },
    Route {
        path: "/calls/{call_id}",
        methods: &["get", "delete"],
    },
    Route {
        path: "/media",
        methods: &["get", "post"],
    },
    // Before `/media/{media_id}`: the route test deletes the item there.
    Route {
        path: "/media/{media_id}/audio",
        methods: &["get"],
    },
    Route {
        path: "/media/{media_id}",
        methods: &["get", "delete"],
    },
    Route {
        path: "/recordings",
        methods: &["get"],
    },
    // Before `/recordings/{id}`: the route test deletes the recording there.
    Route {
        path: "/recordings/{id}/audio",
        methods: &["get"],
    },
    Route {
        path: "/recordings/{id}",
        methods: &["get", "delete"],
    },
    Route {
        path: "/statistics",
        methods: &["get"],
    },
    Route {
        path: "/load-limits",
        methods: &["get", "put"],
    },
    Route {
        path: "/metrics",
        methods: &["get"],
    },
    Route {
        path: "/openapi.json",
        methods: &["get"],
    },
];

/// The route serving `path` (a request path, not yet percent-decoded), if any.
pub(super) fn route_for(path: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|route| {
        let mut want = route.path.split('/');
        let mut got = path.split('/');
        loop {
            match (want.next(), got.next()) {
                (None, None) => return true,
                (Some(w), Some(g)) if w.starts_with('{') => {
                    if g.is_empty() {
                        return false;
                    }
                }
                (Some(w), Some(g)) if w == g => {}
                _ => return false,
            }
        }
    })
}

fn recording_id_param() -> Value {
    json!({
        "name": "id",
        "in": "path",
        "required": true,
        "description": "Recording id (letters, digits, `-`, `_`), from `GET /recordings`.",
        "schema": {"type": "string"}
    })
}

fn media_id_param() -> Value {
    json!({
        "name": "media_id",
        "in": "path",
        "required": true,
        "description": "Media id (16 hex digits: the start of the file's SHA-256), from `GET /media` or the upload.",
        "schema": {"type": "string", "pattern": "^[0-9a-f]{16}$"}
    })
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

fn json_response(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
    })
}

fn call_id_param() -> Value {
    json!({
        "name": "call_id",
        "in": "path",
        "required": true,
        "description": "SIP Call-ID, percent-encoded (`@` may stay as is, `/` must be `%2F`).",
        "schema": {"type": "string"}
    })
}

fn counters_schema() -> Value {
    json!({
        "type": "object",
        "required": ["packets", "bytes", "errors", "rtcp_packets", "rtcp_bytes", "last_packet_unix_ms"],
        "properties": {
            "packets": {"type": "integer", "minimum": 0},
            "bytes": {"type": "integer", "minimum": 0, "description": "RTP header included"},
            "errors": {"type": "integer", "minimum": 0},
            "rtcp_packets": {"type": "integer", "minimum": 0},
            "rtcp_bytes": {"type": "integer", "minimum": 0},
            "last_packet_unix_ms": {"type": ["integer", "null"]}
        }
    })
}

fn schemas() -> Value {
    let addr = json!({"type": "string", "description": "IP:port"});
    let opt_addr = json!({"type": ["string", "null"], "description": "IP:port"});
    let u64_ = json!({"type": "integer", "minimum": 0});
    let mut schemas = Map::new();
    let opt_num = json!({"type": ["number", "null"]});
    let opt_u64 = json!({"type": ["integer", "null"], "minimum": 0});
    schemas.insert(
        "LoadLimits".into(),
        json!({
            "type": "object",
            "description": "Limits are null when off; figures are null when not sampled (their limit is off).",
            "properties": {
                "max_sessions": opt_u64, "max_load": opt_num, "max_cpu": opt_num,
                "max_bandwidth": opt_u64, "max_transcoding_load": opt_num,
                "sessions": u64_,
                "load": opt_num, "cpu_percent": opt_num, "bandwidth_bytes_per_s": opt_u64,
                "transcoding_load_percent": opt_num,
                "refusing": {"type": ["string", "null"], "enum": ["sessions", "load", "cpu", "bandwidth", null],
                    "description": "The limit refusing new calls now"},
                "refusing_transcoding": {"type": ["string", "null"], "enum": ["sessions", "load", "cpu", "bandwidth", "transcoding", null],
                    "description": "The limit refusing new calls that ask for transcoding now"}
            }
        }),
    );
    schemas.insert(
        "Error".into(),
        json!({
            "type": "object",
            "required": ["error", "detail"],
            "properties": {
                "error": {"type": "string", "description": "Stable code: not_found, bad_request, unauthorized, method_not_allowed, payload_too_large, internal_server_error"},
                "detail": {"type": "string", "description": "Human-readable explanation"}
            }
        }),
    );
    schemas.insert(
        "Health".into(),
        json!({
            "type": "object",
            "required": ["status", "version", "uptime_s"],
            "properties": {
                "status": {"const": "ok"},
                "version": {"type": "string"},
                "uptime_s": u64_
            }
        }),
    );
    schemas.insert("Counters".into(), json!(counters_schema()));
    schemas.insert(
        "CallSummary".into(),
        json!({
            "type": "object",
            "required": ["call_id", "created_unix_us", "legs", "packets", "bytes", "errors"],
            "properties": {
                "call_id": {"type": "string"},
                "created_unix_us": u64_,
                "legs": {"type": "array", "items": {
                    "type": "object",
                    "required": ["tag", "label", "streams"],
                    "properties": {
                        "tag": {"type": "string"},
                        "label": {"type": ["string", "null"]},
                        "streams": {"type": "array", "items": {
                            "type": "object",
                            "required": ["media", "component", "local", "endpoint", "packets", "bytes", "errors"],
                            "properties": {
                                "media": {"type": "integer", "minimum": 1},
                                "component": {"enum": ["rtp", "rtcp"]},
                                "local": addr,
                                "endpoint": opt_addr,
                                "packets": u64_, "bytes": u64_, "errors": u64_,
                                "loss_percent": {"type": ["number", "null"]},
                                "jitter_ms": {"type": ["number", "null"]},
                                "mos": {"type": ["number", "null"], "description": "Average MOS estimate (E-model)"}
                            }
                        }}
                    }
                }},
                "packets": u64_, "bytes": u64_, "errors": u64_
            }
        }),
    );
    schemas.insert(
        "CallList".into(),
        json!({
            "type": "object",
            "required": ["total", "count", "calls"],
            "properties": {
                "total": u64_,
                "count": u64_,
                "calls": {"type": "array", "items": {"$ref": "#/components/schemas/CallSummary"}}
            }
        }),
    );
    schemas.insert(
        "Stream".into(),
        json!({
            "type": "object",
            "required": ["component", "local", "endpoint", "advertised", "flags", "last_ssrc", "counters"],
            "properties": {
                "component": {"enum": ["rtp", "rtcp"]},
                "local": addr,
                "endpoint": opt_addr,
                "advertised": opt_addr,
                "flags": {"type": "array", "items": {"type": "string"}},
                "last_ssrc": {"type": ["integer", "null"]},
                "counters": {"$ref": "#/components/schemas/Counters"},
                "quality": {"$ref": "#/components/schemas/Quality"}
            }
        }),
    );
    let mos_sample = json!({
        "type": "object",
        "properties": {
            "mos": {"type": "number"}, "loss_percent": {"type": "number"},
            "jitter_ms": {"type": "number"}, "rtt_ms": {"type": "number"},
            "reported_unix_s": u64_
        }
    });
    schemas.insert(
        "Quality".into(),
        json!({
            "type": "object",
            "description": "Quality of what the party sends (RTP streams only): RFC 3550 statistics measured by the engine, the party's RTCP reports, and a MOS estimate (simplified ITU-T G.107 E-model, sampled every 2 s)",
            "properties": {
                "ssrc": {"type": ["integer", "null"]},
                "clock_rate": u64_,
                "packets_expected": u64_,
                "packets_received": u64_,
                "packets_lost": {"type": "integer"},
                "loss_percent": {"type": "number"},
                "duplicates": u64_,
                "reordered": u64_,
                "jitter_ms": {"type": "number"},
                "rtt_ms": {"type": ["number", "null"]},
                "mos": {"type": ["object", "null"], "properties": {
                    "samples": u64_, "average": mos_sample, "lowest": mos_sample, "highest": mos_sample
                }},
                "rtcp": {"type": "object", "properties": {
                    "sender_reports": u64_, "receiver_reports": u64_, "extended_reports": u64_,
                    "reported": {"type": ["object", "null"], "properties": {
                        "ssrc": u64_, "fraction_lost": {"type": "number"},
                        "cumulative_lost": {"type": "integer"}, "jitter_ms": {"type": "number"}
                    }},
                    "xr_voip": {"type": ["object", "null"], "properties": {
                        "loss_fraction": {"type": "number"}, "rtt_ms": u64_,
                        "mos_cq": {"type": ["number", "null"]}
                    }}
                }}
            }
        }),
    );
    schemas.insert(
        "Media".into(),
        json!({
            "type": "object",
            "required": ["index", "type", "protocol", "codec", "flags", "streams"],
            "properties": {
                "index": {"type": "integer", "minimum": 1},
                "type": {"type": "string"},
                "protocol": {"type": "string"},
                "codec": {"type": ["string", "null"]},
                "flags": {"type": "array", "items": {"type": "string"}},
                "streams": {"type": "array", "items": {"$ref": "#/components/schemas/Stream"}}
            }
        }),
    );
    schemas.insert(
        "Leg".into(),
        json!({
            "type": "object",
            "required": ["tag", "label", "via_branch", "created_unix_s", "peers", "medias"],
            "properties": {
                "tag": {"type": "string"},
                "label": {"type": ["string", "null"]},
                "via_branch": {"type": ["string", "null"]},
                "created_unix_s": u64_,
                "peers": {"type": "array", "items": {"type": "string"}},
                "medias": {"type": "array", "items": {"$ref": "#/components/schemas/Media"}}
            }
        }),
    );
    schemas.insert(
        "Call".into(),
        json!({
            "type": "object",
            "required": ["call_id", "created_unix_us", "last_signal_unix_s", "legs", "totals"],
            "properties": {
                "call_id": {"type": "string"},
                "created_unix_us": u64_,
                "last_signal_unix_s": u64_,
                "totals": {
                    "type": "object",
                    "properties": {
                        "rtp": {"$ref": "#/components/schemas/Counters"},
                        "rtcp": {"$ref": "#/components/schemas/Counters"}
                    }
                },
                "legs": {"type": "array", "items": {"$ref": "#/components/schemas/Leg"}}
            }
        }),
    );
    schemas.insert(
        "Recording".into(),
        json!({
            "type": "object",
            "required": ["id", "call_id", "state", "start_ms", "stop_ms", "duration_ms", "sample_rate", "legs", "metadata", "recorded", "pauses", "streams", "files"],
            "properties": {
                "id": {"type": "string"},
                "call_id": {"type": "string"},
                "state": {"enum": ["complete", "failed"]},
                "error": {"type": ["string", "null"]},
                "start_ms": u64_, "stop_ms": u64_, "duration_ms": u64_,
                "sample_rate": u64_,
                "channels": u64_,
                "format": {"enum": ["wav", "pcap", "both"]},
                "legs": {"type": "array", "items": {"type": "object"}},
                "metadata": {"type": "array", "items": {"type": "string"}},
                "output_destination": {"type": ["string", "null"]},
                "recorded": {"type": "array", "items": {"type": "object"}},
                "pauses": {"type": "array", "items": {"type": "object"}},
                "streams": {"type": "array", "items": {"type": "object"}},
                "files": {"type": "object"}
            }
        }),
    );
    schemas.insert(
        "Media".into(),
        json!({
            "type": "object",
            "required": ["id", "name", "format", "duration_ms", "sample_rate", "channels", "size", "sha256", "created"],
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "format": {"enum": ["wav", "mp3", "ogg", "flac"]},
                "duration_ms": u64_, "sample_rate": u64_, "channels": u64_, "size": u64_,
                "sha256": {"type": "string"},
                "created": u64_
            }
        }),
    );
    schemas.insert(
        "MediaList".into(),
        json!({
            "type": "object",
            "required": ["count", "media"],
            "properties": {
                "count": u64_,
                "media": {"type": "array", "items": {"$ref": "#/components/schemas/Media"}}
            }
        }),
    );
    schemas.insert(
        "Deleted".into(),
        json!({"type": "object", "required": ["deleted"], "properties": {"deleted": {"type": "string"}}}),
    );
    schemas.insert(
        "RecordingList".into(),
        json!({
            "type": "object",
            "required": ["count", "recordings"],
            "properties": {
                "count": u64_,
                "recordings": {"type": "array", "items": {"$ref": "#/components/schemas/Recording"}}
            }
        }),
    );
    schemas.insert(
        "Statistics".into(),
        json!({
            "type": "object",
            "required": ["engine_uptime_s", "calls", "ports", "packets", "ng"],
            "properties": {
                "engine_uptime_s": u64_,
                "calls": {"type": "object", "properties": {
                    "active": u64_, "total": u64_, "timed_out": u64_, "deleted": u64_
                }},
                "ports": {"type": "object", "properties": {"in_use": u64_, "total": u64_}},
                "packets": {"type": "object", "properties": {
                    "rtp_packets": u64_, "rtp_bytes": u64_, "rtcp_packets": u64_,
                    "rtcp_bytes": u64_, "relayed_packets": u64_,
                    "rtp_lost": u64_, "rtp_duplicates": u64_, "rtp_reordered": u64_,
                    "drops": {"type": "object", "additionalProperties": u64_}
                }},
                "ng": {"type": "object", "properties": {
                    "requests": {"type": "object", "additionalProperties": {
                        "type": "object", "properties": {"ok": u64_, "error": u64_}
                    }},
                    "retransmissions": u64_,
                    "dropped": u64_
                }}
            }
        }),
    );
    Value::Object(schemas)
}

fn operation(path: &str, method: &str) -> Value {
    let bad = error_response("Bad request (malformed query or path)");
    match (path, method) {
        ("/", "get") => json!({
            "summary": "Live status page (HTML): engine figures, traffic chart, active calls with per-stream quality",
            "responses": {"200": {
                "description": "The page",
                "content": {"text/html": {"schema": {"type": "string"}}}
            }}
        }),
        ("/ui/status.js", "get") => json!({
            "summary": "Script of the status page",
            "responses": {"200": {
                "description": "JavaScript",
                "content": {"text/javascript": {"schema": {"type": "string"}}}
            }}
        }),
        ("/ui/status.css", "get") => json!({
            "summary": "Stylesheet of the status page",
            "responses": {"200": {
                "description": "CSS",
                "content": {"text/css": {"schema": {"type": "string"}}}
            }}
        }),
        ("/health", "get") => json!({
            "summary": "Liveness: the daemon answers and reports its version",
            "responses": {"200": json_response("Alive", "Health")}
        }),
        ("/calls", "get") => json!({
            "summary": "Active calls, newest first, with per-stream addresses and counters",
            "parameters": [{
                "name": "limit", "in": "query", "required": false,
                "description": "Most calls returned (default 1000, at most 10000)",
                "schema": {"type": "integer", "minimum": 0, "maximum": super::MAX_LIST}
            }],
            "responses": {"200": json_response("Call list", "CallList"), "400": bad}
        }),
        ("/calls/{call_id}", "get") => json!({
            "summary": "Everything known about one call (as the ng `query` command)",
            "parameters": [call_id_param()],
            "responses": {
                "200": json_response("The call", "Call"),
                "400": bad,
                "404": error_response("No such call")
            }
        }),
        ("/calls/{call_id}", "delete") => json!({
            "summary": "Terminate a call at once (ng `delete` with `delete delay` 0); returns its final statistics",
            "parameters": [call_id_param()],
            "security": [{"bearer": []}],
            "responses": {
                "200": json_response("The call as it was when terminated", "Call"),
                "400": bad,
                "401": error_response("Missing or invalid bearer token"),
                "404": error_response("No such call")
            }
        }),
        ("/recordings", "get") => json!({
            "summary": "Finished recordings (their metadata), oldest first",
            "parameters": [
                {"name": "call_id", "in": "query", "required": false,
                 "description": "Only recordings of this SIP Call-ID", "schema": {"type": "string"}},
                {"name": "from", "in": "query", "required": false,
                 "description": "Started at or after this Unix time (ms)", "schema": {"type": "integer"}},
                {"name": "to", "in": "query", "required": false,
                 "description": "Started before this Unix time (ms)", "schema": {"type": "integer"}},
                {"name": "limit", "in": "query", "required": false,
                 "description": "Most recordings returned (default 1000)", "schema": {"type": "integer", "minimum": 0}}
            ],
            "responses": {
                "200": json_response("Recording list", "RecordingList"),
                "400": bad,
                "404": error_response("Recording is not enabled")
            }
        }),
        ("/recordings/{id}", "get") => json!({
            "summary": "Metadata of one recording: call-id, tags, labels, ng metadata, intervals, streams, files",
            "parameters": [recording_id_param()],
            "responses": {
                "200": json_response("The recording's metadata", "Recording"),
                "400": bad,
                "404": error_response("No such recording")
            }
        }),
        ("/recordings/{id}", "delete") => json!({
            "summary": "Delete a recording and all its files",
            "parameters": [recording_id_param()],
            "security": [{"bearer": []}],
            "responses": {
                "200": json_response("The deleted recording's id", "Deleted"),
                "400": bad,
                "401": error_response("Missing or invalid bearer token"),
                "404": error_response("No such recording")
            }
        }),
        ("/recordings/{id}/audio", "get") => json!({
            "summary": "The mixed stereo WAV (caller left, callee right); supports a single HTTP Range",
            "parameters": [recording_id_param(), {
                "name": "Range", "in": "header", "required": false,
                "description": "`bytes=FIRST-LAST`, `bytes=FIRST-` or `bytes=-SUFFIX`",
                "schema": {"type": "string"}
            }],
            "responses": {
                "200": {"description": "The whole file", "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}}},
                "206": {"description": "The range asked for", "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}}},
                "400": bad,
                "404": error_response("No such recording, or it has no WAV"),
                "416": error_response("Range not satisfiable")
            }
        }),
        ("/media", "get") => json!({
            "summary": "The media library (music on hold, announcements), oldest id first",
            "responses": {
                "200": json_response("Media list", "MediaList"),
                "404": error_response("The media library is not enabled")
            }
        }),
        ("/media", "post") => json!({
            "summary": "Upload a WAV, MP3, OGG/Vorbis or FLAC file: raw body with `?name=`, or multipart/form-data with a `file` part (and optionally `name`). Decoded and checked before it is stored.",
            "parameters": [{
                "name": "name", "in": "query", "required": false,
                "description": "Display name (no path separators, at most 128 characters); required for a raw body",
                "schema": {"type": "string"}
            }],
            "security": [{"bearer": []}],
            "requestBody": {"required": true, "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {"schema": {"type": "object", "properties": {
                    "file": {"type": "string", "format": "binary"}, "name": {"type": "string"}}}}
            }},
            "responses": {
                "201": json_response("Stored", "Media"),
                "200": json_response("The same file was stored before", "Media"),
                "400": error_response("Empty file, missing or invalid name, malformed multipart"),
                "401": error_response("Missing or invalid bearer token"),
                "413": error_response("Larger than --media-max-bytes"),
                "415": error_response("Not a WAV, MP3, OGG/Vorbis or FLAC file"),
                "422": error_response("Truncated or corrupt, no audio, or longer than --media-max-seconds")
            }
        }),
        ("/media/{media_id}", "get") => json!({
            "summary": "Metadata of one media file: name, format, duration, sample rate, channels, size, SHA-256",
            "parameters": [media_id_param()],
            "responses": {
                "200": json_response("The media file", "Media"),
                "400": bad,
                "404": error_response("No such media")
            }
        }),
        ("/media/{media_id}", "delete") => json!({
            "summary": "Delete a media file (calls playing it keep their copy until they stop)",
            "parameters": [media_id_param()],
            "security": [{"bearer": []}],
            "responses": {
                "200": json_response("The deleted media's id", "Deleted"),
                "400": bad,
                "401": error_response("Missing or invalid bearer token"),
                "404": error_response("No such media")
            }
        }),
        ("/media/{media_id}/audio", "get") => json!({
            "summary": "The file as uploaded",
            "parameters": [media_id_param()],
            "responses": {
                "200": {"description": "The file", "content": {"audio/*": {"schema": {"type": "string", "format": "binary"}}}},
                "400": bad,
                "404": error_response("No such media")
            }
        }),
        ("/statistics", "get") => json!({
            "summary": "Engine-wide counters (as the ng `statistics` command) and ng request counts",
            "responses": {"200": json_response("Statistics", "Statistics")}
        }),
        ("/load-limits", "get") => json!({
            "summary": "Load limits in force, the figures they are checked against, and the limit refusing new calls now",
            "responses": {
                "200": json_response("Load limits", "LoadLimits"),
                "404": error_response("Load limits not available")
            }
        }),
        ("/load-limits", "put") => json!({
            "summary": "Change the session limit while running (0 drains: calls in progress go on, new ones are refused)",
            "security": [{"bearer": []}],
            "requestBody": {
                "required": true,
                "content": {"application/json": {"schema": {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {"max_sessions": {"type": ["integer", "null"], "minimum": -1,
                        "description": "Calls at most; null or -1: no limit"}}
                }}}
            },
            "responses": {
                "200": json_response("Load limits after the change", "LoadLimits"),
                "400": bad,
                "401": error_response("Missing or invalid bearer token"),
                "404": error_response("Load limits not available")
            }
        }),
        ("/metrics", "get") => json!({
            "summary": "Prometheus metrics (text exposition format 0.0.4)",
            "responses": {"200": {
                "description": "Metrics",
                "content": {"text/plain; version=0.0.4": {"schema": {"type": "string"}}}
            }}
        }),
        ("/openapi.json", "get") => json!({
            "summary": "This document",
            "responses": {"200": {
                "description": "OpenAPI 3.1 description",
                "content": {"application/json": {"schema": {"type": "object"}}}
            }}
        }),
        _ => json!({"responses": {}}),
    }
}

/// The OpenAPI document.
pub(super) fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let mut item = Map::new();
        for &method in route.methods {
            let mut op = operation(route.path, method);
            let responses = op["responses"].as_object_mut().expect("responses object");
            // Writes can meet a too-large body; every route can meet a failing engine.
            if method != "get" {
                responses.insert("413".into(), error_response("Request body too large"));
            }
            responses.insert("500".into(), error_response("Internal error"));
            item.insert(method.to_owned(), op);
        }
        paths.insert(route.path.to_owned(), Value::Object(item));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "ngmedia HTTP API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Monitoring and control of the ngmedia media engine. Reads are open; \
                writes (POST, PUT, PATCH, DELETE) need `Authorization: Bearer <token>` when the \
                daemon has --http-token. Errors are JSON {\"error\", \"detail\"}.",
            "license": {"name": "GPL-3.0-or-later", "identifier": "GPL-3.0-or-later"}
        },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_with_responses() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        assert_eq!(paths.len(), ROUTES.len());
        for route in ROUTES {
            for method in route.methods {
                let op = &paths[route.path][*method];
                assert!(
                    op["summary"].is_string(),
                    "{method} {} lacks a summary",
                    route.path
                );
                let responses = op["responses"].as_object().unwrap();
                assert!(responses.contains_key("200"), "{method} {}", route.path);
                assert!(responses.contains_key("500"), "{method} {}", route.path);
            }
        }
        assert!(paths["/calls/{call_id}"]["delete"]["responses"]["401"].is_object());
    }

    #[test]
    fn routes_match_request_paths() {
        assert_eq!(route_for("/health").unwrap().path, "/health");
        assert_eq!(route_for("/calls/a%40b").unwrap().path, "/calls/{call_id}");
        assert!(route_for("/calls/").is_none());
        assert!(route_for("/calls/a/b").is_none());
        assert!(route_for("/healthz").is_none());
        assert_eq!(route_for("/calls").unwrap().methods, &["get"]);
    }

    #[test]
    fn every_schema_reference_resolves() {
        let doc = document();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for part in text.split("\"#/components/schemas/").skip(1) {
            let name = &part[..part.find('"').unwrap()];
            assert!(schemas.contains_key(name), "dangling $ref to {name}");
        }
    }
}
