//! Shell completions and manual pages, generated from the clap definition of
//! [`super::Cli`]: the one place each command and flag is defined. Completion
//! of names (networks, namespaces, pods, `--network` modes) is dynamic: the
//! scripts ask `nsnet __complete` for the candidates at the cursor.

use anyhow::{Context as _, Result};
use clap::{Args, CommandFactory};
use nsnet::ops::Context;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell (names are completed in bash, zsh and fish).
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write nsnet.1 and one page per subcommand (nsnet-network-create.1, ...)
    /// into DIR (made if missing, but not its parents); without it, print nsnet.1.
    #[arg(short, long, value_name = "DIR")]
    output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompleteArgs {
    /// The words typed so far, after `nsnet` and before the cursor's word.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    words: Vec<String>,
}

/// `nsnet completions bash > /etc/bash_completion.d/nsnet`.
pub fn completions(args: &CompletionsArgs) -> Result<ExitCode> {
    use clap_complete::Shell;
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut super::Cli::command(), "nsnet", &mut out);
    out.extend_from_slice(match args.shell {
        Shell::Bash => BASH_DYNAMIC.as_bytes(),
        Shell::Zsh => ZSH_DYNAMIC.as_bytes(),
        Shell::Fish => FISH_DYNAMIC.as_bytes(),
        _ => b"",
    });
    write_stdout(&out)
}

const BASH_DYNAMIC: &str = r#"
# Names (networks, namespaces, pods, --network modes) come from nsnet itself.
_nsnet_dynamic() {
    local cur="${COMP_WORDS[COMP_CWORD]}" names
    names="$(nsnet __complete -- "${COMP_WORDS[@]:1:COMP_CWORD-1}" 2>/dev/null)"
    if [ -n "$names" ]; then
        COMPREPLY=( $(compgen -W "$names" -- "$cur") )
        return 0
    fi
    _nsnet "$@"
}
complete -F _nsnet_dynamic -o nosort -o bashdefault -o default nsnet
"#;

const ZSH_DYNAMIC: &str = r#"
# Names (networks, namespaces, pods, --network modes) come from nsnet itself.
_nsnet_dynamic() {
    local -a names
    names=(${(f)"$(nsnet __complete -- ${words[2,CURRENT-1]} 2>/dev/null)"})
    if (( ${#names} )); then
        compadd -a names
    else
        _nsnet "$@"
    fi
}
compdef _nsnet_dynamic nsnet
"#;

const FISH_DYNAMIC: &str = r#"
# Names (networks, namespaces, pods, --network modes) come from nsnet itself.
complete -c nsnet -f -a '(nsnet __complete -- (commandline -opc)[2..-1] 2>/dev/null)'
"#;

/// What the word at the cursor names, from the words before it.
#[derive(Debug, PartialEq, Eq)]
enum Want {
    Networks,
    Namespaces,
    Pods,
    Modes,
    Nothing,
}

fn want(words: &[String]) -> Want {
    let prev = words.last().map(String::as_str);
    let path: Vec<&str> = words
        .iter()
        .map(String::as_str)
        .filter(|w| !w.starts_with('-'))
        .collect();
    let group = path.first().copied().unwrap_or_default();
    if prev == Some("--network") {
        return if group == "run" {
            Want::Modes
        } else {
            Want::Networks
        };
    }
    // Which positional the cursor is on, after the subcommand words.
    let (cmd, pos) = match group {
        "network" | "netns" | "pod" | "port" => (
            path.get(1).copied().unwrap_or_default(),
            path.len().saturating_sub(2),
        ),
        _ => (group, path.len().saturating_sub(1)),
    };
    if words.iter().any(|w| w == "--") {
        return Want::Nothing;
    }
    match (group, cmd, pos) {
        ("network", "inspect" | "rm", _) => Want::Networks,
        ("network", "connect" | "disconnect", 0) => Want::Networks,
        ("network", "connect" | "disconnect", 1) => Want::Namespaces,
        ("netns", "del" | "delete" | "rm" | "exec", 0) => Want::Namespaces,
        ("netns", "pin", 1) => Want::Nothing,
        ("pod", "exec" | "inspect" | "rm", 0) => Want::Pods,
        ("port", "ls", 0) | ("check", _, 0) => Want::Networks,
        ("link", _, 0 | 1) | ("doctor", _, 0 | 1) => Want::Namespaces,
        _ => Want::Nothing,
    }
}

/// `nsnet __complete -- network rm`: one candidate a line; nothing when the
/// word at the cursor is not a name (the script then completes flags).
pub fn complete(ctx: &Context, args: &CompleteArgs) -> Result<ExitCode> {
    let networks = || -> Vec<String> {
        nsnet::ops::network::list(ctx)
            .map(|n| n.into_iter().map(|n| n.name).collect())
            .unwrap_or_default()
    };
    let pods = || -> Vec<String> {
        nsnet::ops::pod::list(ctx)
            .map(|p| p.into_iter().map(|p| p.name).collect())
            .unwrap_or_default()
    };
    let namespaces = || -> Vec<String> {
        nsnet::ops::netns::list()
            .map(|l| l.into_iter().map(|e| e.name).collect())
            .unwrap_or_default()
    };
    let words: Vec<String> = args
        .words
        .iter()
        .skip_while(|w| w.as_str() == "--")
        .cloned()
        .collect();
    let names = match want(&words) {
        Want::Networks => networks(),
        Want::Namespaces => {
            let mut n = namespaces();
            if words.first().is_some_and(|w| w == "link" || w == "doctor") {
                n.insert(0, "host".into());
            }
            n
        }
        Want::Pods => pods(),
        Want::Modes => {
            let mut m: Vec<String> = vec!["host".into(), "none".into()];
            m.extend(networks());
            m.extend(pods().into_iter().map(|p| format!("pod:{p}")));
            let runs = std::fs::read_dir(ctx.runs_dir());
            m.extend(runs.into_iter().flatten().flatten().filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                (!name.starts_with("run-")).then(|| format!("container:{name}"))
            }));
            m
        }
        Want::Nothing => Vec::new(),
    };
    super::output::print_lines(names);
    Ok(ExitCode::SUCCESS)
}

/// The definition as the manual pages show it: no `help` subcommand (it has
/// no page), built so that every page carries the version.
fn documented() -> clap::Command {
    fn strip_help(cmd: clap::Command) -> clap::Command {
        cmd.disable_help_subcommand(true)
            .mut_subcommands(strip_help)
    }
    let mut cmd = strip_help(super::Cli::command());
    cmd.build();
    cmd
}

/// One page: clap's sections, then EXIT STATUS, ENVIRONMENT and EXAMPLES.
fn page(cmd: &clap::Command, group: &str, out: &mut Vec<u8>) -> std::io::Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    let man = clap_mangen::Man::new(cmd.clone())
        .source(format!("nsnet {version}"))
        .manual("nsnet manual");
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(out)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(out)?;
    }
    out.extend_from_slice(EXIT_STATUS.as_bytes());
    out.extend_from_slice(ENVIRONMENT.as_bytes());
    out.extend_from_slice(b".SH EXAMPLES\n");
    for line in examples(group) {
        out.extend_from_slice(format!(".TP\n.B {}\n", line.replace('-', "\\-")).as_bytes());
    }
    writeln!(out, ".SH VERSION\nv{version}")
}

const EXIT_STATUS: &str = r#".SH "EXIT STATUS"
.TP
.B 0
Success.
.TP
.B 1
The answer is no: \fBdoctor\fR found the path blocked, \fBcheck\fR found drift.
.TP
.B 2
Usage: an unknown option, a bad value, a missing argument.
.TP
.B 125
nsnet itself failed (the message says what and why, e.g. permission denied, a network that does not exist).
.TP
.B 126
The command (\fBrun\fR, \fBpod exec\fR, \fBnetns exec\fR) cannot run: not executable, or a bad working directory.
.TP
.B 127
The command was not found.
.PP
Otherwise \fBrun\fR, \fBpod exec\fR and \fBnetns exec\fR exit with the command's own status (128+N when signal N ended it).
"#;

const ENVIRONMENT: &str = r#".SH ENVIRONMENT
.TP
.B NSNET_STATE_DIR
Runtime state (endpoints, leases, pods), like \fB\-\-state\-dir\fR; default /run/nsnet.
.TP
.B NSNET_CONFIG_DIR
Network definitions, like \fB\-\-config\-dir\fR; default /var/lib/nsnet.
.TP
.B CNI_COMMAND
When set, nsnet runs as a CNI plugin (ADD, DEL, CHECK, STATUS, GC, VERSION) instead of the CLI.
"#;

fn examples(group: &str) -> &'static [&'static str] {
    match group {
        "netns" => &[
            "nsnet netns add a",
            "nsnet netns exec a -- ip addr",
            "nsnet netns pin 4242 ctr1",
            "nsnet netns ls -q",
        ],
        "link" => &[
            "nsnet link add a b --addr 10.0.0.1/24 --peer-addr 10.0.0.2/24",
            "nsnet link del a veth-b",
        ],
        "network" => &[
            "nsnet network create web --subnet 10.88.0.0/24",
            "nsnet network connect web a -p 8080:80",
            "nsnet network ls --format '{{.Name}} {{.Subnets}}'",
            "nsnet network inspect web",
            "nsnet network rm web db",
            "nsnet network prune",
        ],
        "port" => &["nsnet port ls", "nsnet port ls web --json"],
        "pod" => &[
            "nsnet pod create p1 --network web -p 8080:80",
            "nsnet pod exec p1 -- sh",
            "nsnet pod ls",
            "nsnet pod rm p1 --force",
        ],
        "run" => &[
            "nsnet run --network web -p 80 -- python3 -m http.server 80",
            "nsnet run --network none -- ip link",
            "nsnet run --network pod:p1 -- ps",
        ],
        "graph" => &["nsnet graph", "nsnet graph --format svg -o net.svg"],
        "doctor" => &["nsnet doctor a b:80", "nsnet doctor a 203.0.113.2 --json"],
        "gc" | "check" | "firewall" => &["nsnet check", "nsnet gc", "nsnet firewall reload"],
        "completions" | "man" => &[
            "nsnet completions bash > /etc/bash_completion.d/nsnet",
            "nsnet man --output /usr/local/share/man/man1",
        ],
        "demo" => &["nsnet demo"],
        _ => &[
            "nsnet network create web",
            "nsnet run --network web -p 8080:80 -- busybox httpd -f -p 80",
            "nsnet pod create p1 --network web",
            "nsnet doctor p1 web",
        ],
    }
}

/// `nsnet man | man -l -`, or `nsnet man --output /usr/local/share/man/man1`.
pub fn man(args: &ManArgs) -> Result<ExitCode> {
    let cmd = documented();
    match &args.output {
        Some(dir) => {
            let context = || format!("man: writing pages to {}", dir.display());
            // DIR itself is made, its parents never: a typo must not grow a tree.
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                if !parent.is_dir() {
                    anyhow::bail!(
                        "man: {} does not exist (--output makes DIR, not its parents)",
                        parent.display()
                    );
                }
            }
            match std::fs::create_dir(dir) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {}
                r => r.with_context(context)?,
            }
            write_pages(&cmd, "", dir).with_context(context)?;
        }
        None => {
            let mut out = Vec::new();
            page(&cmd, "", &mut out)?;
            write_stdout(&out)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `nsnet.1`, `nsnet-network.1`, `nsnet-network-create.1`, ... (a built
/// command's display name is its path joined by dashes).
fn write_pages(cmd: &clap::Command, group: &str, dir: &std::path::Path) -> std::io::Result<()> {
    let name = cmd.get_display_name().unwrap_or(cmd.get_name());
    let mut out = Vec::new();
    page(cmd, group, &mut out)?;
    std::fs::write(dir.join(format!("{name}.1")), out)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let group = if group.is_empty() {
            sub.get_name()
        } else {
            group
        };
        write_pages(sub, group, dir)?;
    }
    Ok(())
}

fn write_stdout(bytes: &[u8]) -> Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`nsnet man | head`) is not an error worth reporting.
    let _ = stdout.write_all(bytes).and_then(|()| stdout.flush());
    Ok(ExitCode::SUCCESS)
}
