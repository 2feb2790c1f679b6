//! `--json` on every listing: each `ls`, `inspect`, `gc` and `check` accepts it
//! and prints JSON that matches what the kernel and the records hold.

mod common;
use common::Sandbox;
use serde_json::Value;

fn json(sb: &Sandbox, args: &[&str]) -> Value {
    let out = sb.ok(args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out:?}"))
}

#[test]
fn every_listing_takes_json() {
    let sb = Sandbox::new();
    sb.netns(&["a"]);
    sb.ok(&["network", "create", "web", "--subnet", "10.77.0.0/24"]);
    sb.ok(&["network", "connect", "web", "a", "-p", "8080:80"]);
    sb.ok(&["pod", "create", "p", "--network", "web"]);

    // Every listing command in the CLI says so in its help.
    for cmd in [
        &["netns", "ls"][..],
        &["network", "ls"],
        &["network", "inspect"],
        &["port", "ls"],
        &["pod", "ls"],
        &["pod", "inspect"],
        &["gc"],
        &["check"],
        &["doctor"],
    ] {
        let mut args = cmd.to_vec();
        args.push("--help");
        assert!(sb.ok(&args).contains("--json"), "{cmd:?} lacks --json");
    }

    let netns = json(&sb, &["netns", "ls", "--json"]);
    assert!(netns.to_string().contains("\"a\""), "{netns}");
    assert_eq!(json(&sb, &["network", "ls", "--json"])[0]["name"], "web");
    // inspect prints JSON anyway; --json gives the same document.
    let inspect = json(&sb, &["network", "inspect", "web"]);
    assert_eq!(json(&sb, &["network", "inspect", "web", "--json"]), inspect);
    assert_eq!(inspect["endpoints"].as_array().unwrap().len(), 2);
    let pod = json(&sb, &["pod", "inspect", "p"]);
    let pod_json = json(&sb, &["pod", "inspect", "p", "--json"]);
    assert_eq!(pod_json["name"], "p");
    assert_eq!(pod_json["pid"], pod["pid"]);
    assert_eq!(json(&sb, &["pod", "ls", "--json"])[0]["name"], "p");
    assert_eq!(json(&sb, &["port", "ls", "--json"])[0]["host_port"], 8080);
    assert!(json(&sb, &["gc", "--json"]).is_object());
    assert_eq!(json(&sb, &["check", "--json"]), Value::Array(Vec::new()));
}
