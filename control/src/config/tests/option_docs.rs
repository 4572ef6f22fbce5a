//! The option table against `--help`, the configuration file keys and the generated
//! configuration reference: every option documented once, everywhere.

use super::*;

#[test]
fn help_documents_every_option() {
    let help = Cli::command().render_long_help().to_string();
    for opt in [
        "--config",
        "--config-file",
        "--config-section",
        "--interface",
        "--listen-ng",
        "--listen-http",
        "--http-token",
        "--port-min",
        "--port-max",
        "--timeout",
        "--silent-timeout",
        "--final-timeout",
        "--delete-delay",
        "--num-threads",
        "--log-level",
        "--log-stderr",
        "--foreground",
        "--recording-dir",
        "--recording-format",
        "--recording-per-party",
        "--help",
        "--version",
    ] {
        assert!(help.contains(opt), "--help lacks {opt}");
    }
    assert!(help.contains("NGMEDIA_HTTP_TOKEN"));
    Cli::command().debug_assert();
}

#[test]
fn every_option_is_a_flag_and_a_file_key() {
    let cmd = Cli::command();
    for opt in options::all() {
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(opt.long))
            .unwrap_or_else(|| panic!("{} is no flag", opt.long));
        assert_eq!(arg.get_short(), opt.short, "{}", opt.long);
        if let Action::Set(_) = opt.action {
            let value = match opt.value {
                Value::Flag => "true",
                _ => "",
            };
            let text = format!("[rtpengine]\n{} = {value}\n", opt.long);
            // Every acting key is read (an empty value may be refused, never unknown).
            if let Ok((_, warnings)) = parse_file(&text, Path::new("t.conf"), "rtpengine") {
                assert!(
                    !warnings.iter().any(|w| w.contains("does not support")),
                    "{}: {warnings:?}",
                    opt.long
                );
            }
        }
    }
    // No long name or short letter twice.
    let mut names: Vec<&str> = options::all()
        .flat_map(|o| std::iter::once(o.long).chain(o.aliases.iter().copied()))
        .collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len());
}

#[test]
fn help_lists_every_option() {
    let help = Cli::command().render_long_help().to_string();
    for opt in options::all() {
        assert!(
            help.contains(&format!("--{}", opt.long)),
            "--help lacks {}",
            opt.long
        );
    }
}

#[test]
fn configuration_reference() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
    let page = std::fs::read_to_string(&path).expect("docs/configuration.md");
    let (before, rest) = page
        .split_once(reference::BEGIN)
        .expect("docs/configuration.md has the BEGIN line of the reference");
    let (committed, after) = rest
        .split_once(reference::END)
        .expect("docs/configuration.md has the END line of the reference");
    let rendered = format!("\n\n{}\n", reference::markdown());
    if committed == rendered {
        return;
    }
    if std::env::var_os("NGMEDIA_WRITE_DOCS").is_some() {
        let page = format!(
            "{before}{}{rendered}{}{after}",
            reference::BEGIN,
            reference::END
        );
        std::fs::write(&path, page).expect("docs/configuration.md writable");
        return;
    }
    let first_difference = committed
        .lines()
        .zip(rendered.lines())
        .find(|(a, b)| a != b)
        .map(|(a, b)| format!("committed: {a}\nrendered:  {b}"))
        .unwrap_or_else(|| "one is longer than the other".to_owned());
    panic!(
        "docs/configuration.md differs from the option table; run \
         `NGMEDIA_WRITE_DOCS=1 cargo test -p ngmedia-control configuration_reference`\n\
         {first_difference}"
    );
}

/// Every option, acting or ignored, is in the rendered reference.
#[test]
fn reference_lists_every_option() {
    let rendered = reference::markdown();
    for opt in options::all() {
        assert!(
            rendered.contains(&format!("`--{}", opt.long)),
            "the reference lacks --{}",
            opt.long
        );
    }
}
