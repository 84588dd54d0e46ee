//! The loopback builder-host harness itself, checked with OpenSSH's client and Nix's own tools:
//! hosts accept the fleet key with strict host-key checking, each has its own Nix store
//! (separate from the other hosts and from this machine's), with the declared system.

mod support;

use std::process::Command;

use support::hosts::{self, DagSpec, HostSpec};

#[track_caller]
fn ok(o: &std::process::Output) -> String {
    assert!(o.status.success(), "failed: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn ssh_hosts_have_separate_stores_reached_by_openssh_and_nix() {
    let mut fleet = hosts::start(hosts::STANDARD);
    let emu = fleet.host("emu");
    let rv = fleet.host("rv");

    // OpenSSH's client with strict checking against the fleet's known_hosts.
    let v = ok(&fleet.ssh(emu).arg("nix-store --version").output().expect("ssh"));
    assert!(v.contains("nix-store (Nix)"), "{v}");
    let conf = ok(&fleet.ssh(rv).arg("nix show-config 2>/dev/null | grep '^system ='").output().expect("ssh"));
    assert_eq!(conf.trim(), "system = riscv64-linux");
    let conf = ok(&fleet.ssh(emu).arg("nix show-config | grep '^extra-platforms ='").output().expect("ssh"));
    assert!(conf.contains("riscv64-linux") && conf.contains("aarch64-linux"), "{conf}");

    // A path built locally is copied by Nix's own ssh store to emu only.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = hosts::write_dag_nix(dir.path(), &DagSpec::flat(1, "x86_64-linux"));
    let drvs = hosts::instantiate(&file);
    let out = ok(&Command::new("nix-store").arg("--realise").arg(&drvs[0]).output().expect("nix-store"));
    let out = out.trim().to_string();
    assert!(!emu.store_has(&out) && !rv.store_has(&out), "fresh host stores must be empty");
    let copied = Command::new("nix-copy-closure")
        .args(["--to", &format!("root@{}", emu.addr)])
        .arg(&out)
        .env("NIX_SSHOPTS", format!("{} -p {}", fleet.nix_sshopts(), emu.port))
        .output()
        .expect("nix-copy-closure");
    ok(&copied);
    assert!(emu.store_has(&out), "copied path missing on emu");
    assert!(!rv.store_has(&out), "rv's store must be separate from emu's");
    assert!(emu.root.join("store").join(out.trim_start_matches("/nix/store/")).exists());

    // A path only the host has is not in the local store.
    let made = ok(&emu.run("echo hi > /tmp/rvbuild-hosts-f; nix-store --add /tmp/rvbuild-hosts-f"));
    let made = made.trim();
    assert!(emu.store_has(made));
    let local = Command::new("nix-store").args(["--check-validity", made]).output().expect("nix-store");
    assert!(!local.status.success(), "{made} leaked into the local store");

    // Killing a host removes all of its processes; a restart serves the same store again.
    let rv_port = rv.port;
    let emu = fleet.host_mut("emu");
    emu.kill_sshd();
    assert!(emu.processes().is_empty());
    emu.restart();
    assert!(emu.store_has(&out));
    assert_ne!(emu.port, rv_port);
    let machines = std::fs::read_to_string(fleet.machines_file()).expect("machines");
    assert_eq!(machines.lines().count(), 2);
    let parsed = rvbuild::builders::machines::parse_spec(&machines, "fleet").expect("machines parse");
    assert_eq!(parsed[0].systems, ["x86_64-linux", "riscv64-linux", "aarch64-linux"]);
    assert_eq!(parsed[1].port, Some(rv_port));
    assert!(parsed[1].host_key.is_some());
}

#[test]
fn ssh_hosts_dag_generator_gives_unique_instantiable_graphs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = DagSpec::layered(30, 4, 0.0, 10);
    let a = hosts::instantiate(&hosts::write_dag_nix(dir.path(), &spec));
    let b = hosts::instantiate(&hosts::write_dag_nix(dir.path(), &spec));
    assert_eq!(a.len(), 30);
    assert!(a.iter().all(|d| d.ends_with(".drv")));
    assert!(a.iter().all(|d| !b.contains(d)), "every generation must give new derivations");
    let text = std::fs::read_to_string(&a[3]).expect("drv");
    assert!(text.contains("\"riscv64-linux\""), "{text}");
    assert!(text.contains(a[0].as_str()) || text.contains(&a[1]), "node 3 depends on earlier nodes: {text}");
    let _ = HostSpec::new("x", "x86_64-linux");
}
