//! Lawful interception: the LI administration listener, its credentials and the folder of
//! LI tasks.

use super::{nonempty_path, opt, optional_path, with_env, Opt, Value::One};
use crate::config::parse::parse_listen;

pub(super) static OPTIONS: &[Opt] = &[
    opt(
        "listen-li",
        None,
        One("ADDR:PORT"),
        "TCP address of the lawful-interception administration API (`/li/tasks`), \
         ADDR:PORT. Off unless given. Needs --li-token and/or mutual TLS (--li-tls-cert, \
         --li-tls-key, --li-tls-ca).",
        |l, v| {
            // Empty stands for "off" (the sample file documents it so).
            if !v.trim().is_empty() {
                l.listen_li = Some(parse_listen(v)?);
            }
            Ok(())
        },
    ),
    with_env(
        opt(
            "li-token",
            None,
            One("TOKEN"),
            "Bearer token of the LI API (separate from --http-token). Prefer the environment \
             variable or the config file.",
            |l, v| {
                l.li_token = Some(v.to_string());
                Ok(())
            },
        ),
        "NGMEDIA_LI_TOKEN",
    ),
    opt(
        "li-tls-cert",
        None,
        One("FILE"),
        "PEM certificate (chain) of the LI listener; also presented to X3-over-TLS \
         collectors.",
        |l, v| {
            l.li_tls_cert = optional_path(v);
            Ok(())
        },
    ),
    opt(
        "li-tls-key",
        None,
        One("FILE"),
        "PEM private key for --li-tls-cert.",
        |l, v| {
            l.li_tls_key = optional_path(v);
            Ok(())
        },
    ),
    opt(
        "li-tls-ca",
        None,
        One("FILE"),
        "PEM CA certificate(s): LI clients must present a certificate it signed (mutual \
         TLS), and X3-over-TLS collectors too.",
        |l, v| {
            l.li_tls_ca = optional_path(v);
            Ok(())
        },
    ),
    opt(
        "li-dir",
        None,
        One("DIR"),
        "Folder of the LI task file and audit log (created with mode 0700). \
         Default: /var/lib/ngmedia/li.",
        |l, v| {
            l.li_dir = Some(nonempty_path(v)?);
            Ok(())
        },
    ),
];
