//! Property tests of the inventory parsers: no input panics them, and every machine they accept
//! is written back by `to_line` (what `builders import` stores) into a line that parses the same.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use rvbuild::builders::known_hosts::KnownHosts;
use rvbuild::builders::machines;
use rvbuild::builders::ssh_config::SshConfig;

fn word() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_-]{0,8}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_text_never_panics(text in "[ -~\n;#@\t]{0,200}") {
        // `@` entries would read files: keep them pointing nowhere.
        let spec = text.replace('@', "@/nonexistent/");
        let _ = machines::parse_spec(&spec, "--builders");
        let mut kh = KnownHosts::default();
        kh.add_text(&text, "kh");
        let _ = kh.lookup("host", 2222);
        if let Ok(c) = SshConfig::parse(&text.replace("Include", "X"), "cfg", std::path::Path::new("/nonexistent"), None) {
            let _ = c.resolve("host", None);
        }
    }

    #[test]
    fn accepted_machines_round_trip(
        user in proptest::option::of(word()),
        host in "[a-z][a-z0-9.-]{0,12}",
        port in proptest::option::of(1u16..),
        ng in any::<bool>(),
        systems in prop::collection::vec(word(), 0..3),
        jobs in 0u32..64,
        speed in 0.0f64..100.0,
        feats in prop::collection::vec(word(), 0..3),
        mand in prop::collection::vec(word(), 0..2),
        key in proptest::option::of(prop::collection::vec(any::<u8>(), 1..40)),
    ) {
        let auth = match &user { Some(u) => format!("{u}@{host}"), None => host.clone() };
        let auth = match port { Some(p) => format!("{auth}:{p}"), None => auth };
        let scheme = if ng { "ssh-ng://" } else { "ssh://" };
        let list = |v: &[String]| if v.is_empty() { "-".to_string() } else { v.join(",") };
        let key = key.map(|k| STANDARD.encode(format!("ssh-ed25519 {}", STANDARD.encode(&k))));
        let line = format!(
            "{scheme}{auth} {} - {jobs} {speed} {} {} {}",
            list(&systems), list(&feats), list(&mand), key.as_deref().unwrap_or("-")
        );
        let m = machines::parse_line(&line, "p").map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(m.port, port);
        prop_assert_eq!(m.user.as_deref(), user.as_deref());
        let again = machines::parse_line(&m.to_line(), "p").map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(again, m);
    }
}
