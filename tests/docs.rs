//! Shell completions and manual pages come from the clap definition: every
//! subcommand `nsnet --help` lists is in them, and they are valid bash / roff.

mod common;
use common::Sandbox;

/// Every subcommand path (`["network", "create"]`, ...), read from the help
/// texts themselves, so the test follows the CLI as it grows.
fn subcommands(sb: &Sandbox, path: &[String]) -> Vec<Vec<String>> {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let help = sb.ok(&args);
    let mut out = Vec::new();
    let mut in_commands = false;
    for line in help.lines() {
        if line.starts_with("Commands:") {
            in_commands = true;
            continue;
        }
        if in_commands {
            let Some(name) = line
                .strip_prefix("  ")
                .and_then(|l| l.split_whitespace().next())
            else {
                break;
            };
            if name == "help" {
                continue;
            }
            let mut sub = path.to_vec();
            sub.push(name.to_owned());
            out.extend(subcommands(sb, &sub));
            out.push(sub);
        }
    }
    out
}

#[test]
fn bash_completion_knows_every_subcommand_and_parses() {
    let sb = Sandbox::new();
    let all = subcommands(&sb, &[]);
    assert!(all.len() > 25, "{all:?}");
    for want in [
        &["doctor"][..],
        &["network", "create"],
        &["completions"],
        &["man"],
    ] {
        assert!(
            all.iter().any(|p| p == want),
            "{want:?} missing from {all:?}"
        );
    }
    let script = sb.ok(&["completions", "bash"]);
    for path in &all {
        let fname = format!("nsnet__subcmd__{}", path.join("__subcmd__"));
        assert!(script.contains(&fname), "bash completion lacks {path:?}");
    }
    let out = sb
        .command("bash")
        .args(["-n", "-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Other shells are generated from the same definition.
    for shell in ["zsh", "fish"] {
        let s = sb.ok(&["completions", shell]);
        assert!(s.contains("doctor") && s.contains("network"), "{shell}");
    }
    sb.fails(&["completions", "tcsh"], "invalid value 'tcsh'");
}

#[test]
fn man_pages_cover_every_subcommand_and_render() {
    let sb = Sandbox::new();
    let all = subcommands(&sb, &[]);
    let page = sb.ok(&["man"]);
    assert!(
        page.starts_with(".ie") || page.contains(".TH nsnet 1"),
        "{page}"
    );
    for path in all.iter().filter(|p| p.len() == 1) {
        assert!(page.contains(&path[0]), "nsnet.1 lacks {path:?}");
    }
    sb.ok(&["man", "--output", "/run/man"]);
    for path in &all {
        let file = format!("/run/man/nsnet-{}.1", path.join("-"));
        sb.sh_ok(&format!("test -s {file}"));
    }
    // Rendered by man(1) when it is installed (a roff error shows as a warning).
    if sb.sh("command -v man").status.success() {
        let out = sb.sh_ok("MANWIDTH=80 man -l /run/man/nsnet-doctor.1 2>&1");
        assert!(out.contains("nsnet-doctor"), "{out}");
        assert!(out.contains("FROM") && out.contains("--json"), "{out}");
        assert!(!out.contains("warning"), "{out}");
    }
}

/// Issue 24.16: help describes every argument, choice errors keep their
/// values, global options have their own heading, man pages have EXIT STATUS,
/// ENVIRONMENT and EXAMPLES and no `nsnet-help(1)`, completions offer names.
#[test]
fn help_man_and_completions_describe_everything_and_offer_names() {
    let sb = Sandbox::new();
    // Every option and positional of every subcommand has a description.
    for path in subcommands(&sb, &[]) {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("-h");
        let help = sb.ok(&args);
        let mut section = "";
        for line in help.lines() {
            if !line.starts_with(' ') {
                section = line;
                continue;
            }
            if section.starts_with("Options") || section.starts_with("Arguments") {
                let l = line.trim_start();
                let described = l
                    .split_once("  ")
                    .is_some_and(|(_, d)| !d.trim().is_empty());
                assert!(described, "nsnet {path:?}: {line:?} has no description");
            }
        }
        assert!(help.contains("Global options:"), "{path:?}: {help}");
    }
    let help = sb.ok(&["--help"]);
    let (_, global) = help.split_once("Global options:").unwrap();
    assert!(
        global.contains("--state-dir")
            && global.contains("--config-dir")
            && global.contains("--verbose")
    );
    sb.fails(
        &["graph", "--format", "png"],
        "(possible values: text, dot, svg, json)",
    );
    // Man pages.
    let page = sb.ok(&["man"]);
    for section in [
        ".SH \"EXIT STATUS\"",
        ".SH ENVIRONMENT",
        ".SH EXAMPLES",
        "NSNET_STATE_DIR",
        "125",
    ] {
        assert!(page.contains(section), "nsnet.1 lacks {section}");
    }
    assert!(
        !page.contains("nsnet\\-help") && !page.contains("nsnet-help"),
        "{page}"
    );
    sb.fails(
        &["man", "--output", "/run/no/such/dir"],
        "/run/no/such does not exist",
    );
    sb.sh_ok("test ! -e /run/no");
    sb.ok(&["man", "--output", "/run/man"]);
    let version = sb
        .ok(&["--version"])
        .trim()
        .trim_start_matches("nsnet ")
        .to_owned();
    for file in ["nsnet-network-create.1", "nsnet-run.1", "nsnet-pod-exec.1"] {
        let p = sb.sh_ok(&format!("cat /run/man/{file}"));
        assert!(p.contains(&format!("nsnet {version}")), "{file}: {p}");
        for section in [".SH \"EXIT STATUS\"", ".SH ENVIRONMENT", ".SH EXAMPLES"] {
            assert!(p.contains(section), "{file} lacks {section}");
        }
    }
    sb.sh_ok("test ! -e /run/man/nsnet-help.1");
    assert_eq!(sb.sh_ok("grep -l 'nsnet\\\\-help' /run/man/* || true"), "");
    // Dynamic completion: names from the records and the kernel.
    sb.ok(&["network", "create", "web", "--subnet", "10.90.9.0/24"]);
    sb.netns(&["blue"]);
    sb.ok(&["pod", "create", "p1", "--network", "web"]);
    let script = sb.ok(&["completions", "bash"]);
    sb.sh_ok(&format!("cat > /run/nsnet.bash <<'EOS'\n{script}\nEOS"));
    let complete = |line: &str| -> Vec<String> {
        let words: Vec<&str> = line.split(' ').collect();
        let cword = words.len() - 1;
        let array = words
            .iter()
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(" ");
        let out = sb.sh_ok(&format!(
            "PATH=$(dirname {}):$PATH bash -c '. /run/nsnet.bash; COMP_WORDS=({}); COMP_CWORD={cword}; \
             COMP_LINE=\"{line}\"; COMP_POINT=${{#COMP_LINE}}; _nsnet_dynamic nsnet; printf \"%s\\n\" \"${{COMPREPLY[@]}}\"'",
            common::NSNET,
            array.replace('\'', "\"")
        ));
        out.lines().map(str::to_owned).collect()
    };
    let modes = complete("nsnet run --network ");
    for m in ["host", "none", "web", "pod:p1"] {
        assert!(modes.contains(&m.to_owned()), "{modes:?}");
    }
    assert_eq!(complete("nsnet network rm w"), ["web"]);
    assert!(complete("nsnet network connect web ").contains(&"blue".to_owned()));
    assert_eq!(complete("nsnet pod exec "), ["p1"]);
    // Flags still complete from the static script.
    assert!(complete("nsnet network create --sub").contains(&"--subnet".to_owned()));
}
