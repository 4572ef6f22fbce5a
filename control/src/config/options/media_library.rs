//! The media library: uploaded music on hold and announcements, their limits, and the
//! folders `play media` may read.

use std::path::PathBuf;

use super::{
    invalid, nonempty_path, opt, Opt,
    Value::{Many, One},
};

pub(super) static OPTIONS: &[Opt] = &[
    opt(
        "media-dir",
        None,
        One("DIR"),
        "Folder of the media library (HTTP /media; ng `db-id`). Created if missing. \
         Default: /var/lib/ngmedia/media.",
        |l, v| {
            l.media_dir = Some(nonempty_path(v)?);
            Ok(())
        },
    ),
    opt(
        "media-max-bytes",
        None,
        One("BYTES"),
        "Largest media upload or `blob`, in bytes. Default: 20971520 (20 MiB).",
        |l, v| {
            l.media_max_bytes = Some(
                v.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| invalid("expected a positive number of bytes"))?,
            );
            Ok(())
        },
    ),
    opt(
        "media-max-seconds",
        None,
        One("SECONDS"),
        "Longest accepted media, in seconds of audio. Default: 600.",
        |l, v| {
            l.media_max_seconds = Some(
                v.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| invalid("expected a positive number of seconds"))?,
            );
            Ok(())
        },
    ),
    opt(
        "media-play-dirs",
        None,
        Many("DIR,DIR"),
        "Folders `play media` with `file` may read from, comma-separated; a path outside them \
         is refused. Default: none (files only through the media library or `blob`).",
        |l, v| {
            l.media_play_dirs.get_or_insert_with(Vec::new).extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .map(PathBuf::from),
            );
            Ok(())
        },
    ),
];
