//! `aibox config get | set | unset`: values in force and where they came from, edits that keep
//! the file's comments, values checked for their type.

mod common;

use common::{Env, json};

#[test]
fn get_set_unset_keep_the_file_and_check_values() {
    let env = Env::new();
    let user = env.path().join("home/.config/aibox/config.yaml");
    std::fs::create_dir_all(user.parent().unwrap()).unwrap();
    std::fs::write(&user, "# my settings\noffline: false   # keep me\n").unwrap();

    env.ok(&["config", "set", "store", "oci:/srv/team-layout"]);
    env.ok(&["config", "set", "insecure_registries", "registry.test:5000, localhost:5000"]);
    let text = std::fs::read_to_string(&user).unwrap();
    assert!(text.starts_with("# my settings\noffline: false   # keep me\n"), "comments and other keys kept: {text}");
    assert_eq!(env.ok(&["config", "get", "store"]), "oci:/srv/team-layout\n");
    let all = json(&env.ok(&["--json", "config", "get"]));
    assert_eq!(all["store"]["source"], user.display().to_string());
    assert_eq!(all["insecure_registries"]["value"], "[registry.test:5000, localhost:5000]");
    assert_eq!(all["policy"]["source"], "default");

    // Flags and the environment win, and say so.
    let out = json(&common::ok({ let mut c = env.aibox(); c.env("AIBOX_STORE", "oci:/elsewhere"); c }, &["--json", "config", "get", "store"]));
    assert_eq!(out["store"], serde_json::json!({"value": "oci:/elsewhere", "source": "flag or environment"}));

    // Bad values and keys change nothing.
    let before = std::fs::read(&user).unwrap();
    for (args, expected) in [
        (&["config", "set", "store", "s3://bucket"][..], "s3://bucket"),
        (&["config", "set", "toolpacks_dir", "relative/dir"], "absolute path"),
        (&["config", "set", "offline", "maybe"], "true or false"),
        (&["config", "set", "nosuch", "x"], "no configuration key `nosuch`"),
    ] {
        let err = env.fails(args);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read(&user).unwrap(), before);

    env.ok(&["config", "unset", "store"]);
    assert!(!std::fs::read_to_string(&user).unwrap().contains("store"));
    assert_eq!(env.ok(&["config", "get", "store"]), "oci:/srv/aibox/layout\n");

    // --system edits the system file (AIBOX_SYSTEM_CONFIG here).
    env.ok(&["config", "set", "--system", "policy", "/etc/aibox/team-policy.yaml"]);
    let system = std::fs::read_to_string(env.path().join("etc-aibox-config.yaml")).unwrap();
    assert_eq!(system, "policy: /etc/aibox/team-policy.yaml\n");
    assert_eq!(env.ok(&["config", "get", "policy"]), "/etc/aibox/team-policy.yaml\n");

    // A broken file is named with its position.
    std::fs::write(&user, "store: [unclosed\n").unwrap();
    let err = env.fails(&["config", "get"]);
    assert!(err.contains("config.yaml") && err.contains("line"), "{err}");
}
