//! The `ngmedia` command line: a clap command built from the option table, and its values
//! as a `Layer`.

use std::ffi::OsString;

use clap::builder::ValueParser;
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};

use super::options::{self, ignored_summary, Action, Opt, Value};
use super::{InvalidValue, Layer, DEFAULT_CONFIG_SECTION};

/// `--help` heading of the rtpengine options ngmedia accepts but does not act on.
const IGNORED_HEADING: &str =
    "rtpengine options accepted and ignored (named in a warning at start-up)";

/// The parsed command line of the `ngmedia` daemon.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cli {
    /// `--config`/`--config-file`: a path, `none`, or the default file.
    pub config: Option<String>,
    pub config_section: String,
    /// `--codecs`: print the codec list and exit.
    pub codecs: bool,
    layer: Layer,
    /// Ignored rtpengine options that were given, in table order.
    ignored: Vec<&'static str>,
}

impl Cli {
    /// Parse the process's arguments; on an error or `--help`/`--version`, print and exit.
    pub(crate) fn parse() -> Cli {
        Cli::try_parse_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    pub(crate) fn try_parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches = Cli::command().try_get_matches_from(args)?;
        Ok(Cli::from_matches(&matches))
    }

    /// The clap command, one argument per table entry.
    pub(crate) fn command() -> Command {
        let mut cmd = Command::new("ngmedia")
            .version(env!("CARGO_PKG_VERSION"))
            .about("ngmedia: a media engine for SIP platforms, driven over rtpengine's ng protocol")
            .long_about(
                "ngmedia: a media engine for SIP platforms, driven over rtpengine's ng protocol.\n\n\
                 Options are rtpengine's, plus ngmedia's own. Values come from the command line, \
                 then the configuration file (TOML, or an rtpengine.conf INI file), then the \
                 built-in defaults.",
            )
            .after_help(
                "Timeouts are in seconds. `ngmedia --help` also lists the rtpengine options that \
                 are accepted and ignored. See docs/configuration.md for the configuration file formats.",
            )
            .disable_version_flag(true)
            // rtpengine (GLib) lets a repeated option override the earlier value.
            .args_override_self(true);
        for opt in options::all() {
            cmd = cmd.arg(arg(opt));
        }
        cmd
    }

    fn from_matches(m: &ArgMatches) -> Cli {
        let mut cli = Cli {
            config: m.get_one::<String>("config").cloned(),
            config_section: m
                .get_one::<String>("config-section")
                .cloned()
                .unwrap_or_else(|| DEFAULT_CONFIG_SECTION.to_string()),
            codecs: m.get_flag("codecs"),
            ..Cli::default()
        };
        for opt in options::all() {
            let given = matches!(
                m.value_source(opt.long),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            );
            if !given {
                continue;
            }
            match opt.action {
                Action::Startup => {}
                Action::Ignore(_) => cli.ignored.push(opt.long),
                Action::Set(set) => {
                    let values: Vec<String> = match opt.value {
                        Value::Flag => vec![m.get_flag(opt.long).to_string()],
                        _ => m
                            .get_many::<String>(opt.long)
                            .map(|v| v.cloned().collect())
                            .unwrap_or_default(),
                    };
                    for v in values {
                        // Already validated by the argument's value parser.
                        if let Err(e) = set(&mut cli.layer, &v) {
                            cli.layer.notes.push(format!("--{}: {e}", opt.long));
                        }
                    }
                }
            }
        }
        cli
    }

    pub(super) fn layer(&self) -> Layer {
        self.layer.clone()
    }

    /// The one start-up warning about ignored options, if any were given.
    pub(super) fn ignored_warning(&self) -> Option<String> {
        if self.ignored.is_empty() {
            return None;
        }
        Some(format!(
            "command line: rtpengine options accepted and ignored: {}",
            ignored_summary(&self.ignored)
        ))
    }
}

fn arg(opt: &'static Opt) -> Arg {
    let mut arg = Arg::new(opt.long).long(opt.long).help(opt.help);
    if let Some(c) = opt.short {
        arg = arg.short(c);
    }
    for a in opt.aliases {
        arg = arg.visible_alias(*a);
    }
    for a in opt.hidden_aliases {
        arg = arg.alias(*a);
    }
    if let Some(env) = opt.env {
        arg = arg.env(env).hide_env_values(true);
    }
    arg = match opt.value {
        Value::Flag => arg.action(ArgAction::SetTrue),
        Value::One(name) => arg
            .value_name(name)
            .action(ArgAction::Set)
            .allow_negative_numbers(true),
        Value::Many(name) => arg
            .value_name(name)
            .action(ArgAction::Append)
            .allow_negative_numbers(true),
    };
    match opt.action {
        Action::Startup if opt.long == "version" => arg.action(ArgAction::Version),
        Action::Startup => arg,
        Action::Set(set) if opt.value != Value::Flag => arg.value_parser(ValueParser::new(
            move |v: &str| -> Result<String, InvalidValue> {
                set(&mut Layer::default(), v)?;
                Ok(v.to_string())
            },
        )),
        Action::Set(_) => arg,
        Action::Ignore(_) if opt.value == Value::Flag => {
            arg.help_heading(IGNORED_HEADING).hide_short_help(true)
        }
        Action::Ignore(_) => arg
            .help_heading(IGNORED_HEADING)
            .hide_short_help(true)
            .value_parser(ValueParser::new(
                move |v: &str| -> Result<String, InvalidValue> {
                    opt.check_ignored(v)?;
                    Ok(v.to_string())
                },
            )),
    }
}
