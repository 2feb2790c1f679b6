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
