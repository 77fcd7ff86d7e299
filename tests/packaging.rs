//! The installed product: the systemd units (`systemd-analyze verify`, and exposure by
//! `systemd-analyze security --offline=true` within the targets: collector ≤ 2.0, agent ≤ 2.5),
//! the two Debian packages built by `packaging/build-deb.sh` (contents, modes, conffiles,
//! maintainer scripts, unpacked paths), and their real installation with `dpkg -i` into a
//! throwaway copy (overlay) of a debootstrap'd Debian root, where the maintainer scripts run
//! and the installed binaries check their configurations as the service user.
//!
//! Tools a machine may lack make a test ignored (libtest-mimic, `support::harness`) unless
//! `$VOQA_REQUIRE_PACKAGING` is set (CI): `systemd-analyze`; `cargo deb` and `dpkg-deb`; root
//! and `$VOQA_DEBIAN_ROOT` (a `debootstrap --variant=minbase
//! --include=systemd-standalone-sysusers bookworm DIR` root; `.ci/run` makes one) for the
//! installation. Nothing here touches the host's own system: the Debian root is mounted as the
//! lower layer of an overlay in a temporary directory and never written.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

const REQUIRE: &str = "VOQA_REQUIRE_PACKAGING";
/// The exposure targets of issue 13.
const AGENT_MAX_EXPOSURE: f64 = 2.5;
const COLLECTOR_MAX_EXPOSURE: f64 = 2.0;

fn main() {
    let trials = trials![
        units_verify_and_stay_within_their_exposure_targets,
        packages_hold_the_right_files_modes_conffiles_and_scripts,
        packages_install_into_a_debian_root_and_check_their_configs,
    ];
    support::harness::main(file!(), trials)
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("workspace root")
}

fn have(tool: &str, arg: &str) -> bool {
    Command::new(tool)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{shown}: {e}"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs and requires success; returns stdout.
fn ok(cmd: &mut Command) -> String {
    let shown = format!("{cmd:?}");
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{shown}: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}

// ---------------------------------------------------------------------------------------------
// Units

/// The overall exposure `systemd-analyze security --offline=true` gives a unit file.
fn exposure(unit: &Path) -> f64 {
    let out = ok(Command::new("systemd-analyze")
        .args(["security", "--offline=true"])
        .arg(unit));
    let line = out
        .lines()
        .find(|l| l.contains("Overall exposure level for"))
        .unwrap_or_else(|| panic!("no overall exposure in:\n{out}"));
    line.split(": ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unreadable exposure line: {line}"))
}

fn units_verify_and_stay_within_their_exposure_targets() {
    if !have("systemd-analyze", "--version") {
        support::harness::skip(REQUIRE, "systemd-analyze not installed (package systemd)");
        return;
    }
    let root = workspace();
    let units = root.join("packaging/systemd");
    let agent = exposure(&units.join("voqa-agent.service"));
    let collector = exposure(&units.join("voqa-collector.service"));
    assert!(
        agent <= AGENT_MAX_EXPOSURE,
        "voqa-agent.service exposure {agent} > {AGENT_MAX_EXPOSURE}"
    );
    assert!(
        collector <= COLLECTOR_MAX_EXPOSURE,
        "voqa-collector.service exposure {collector} > {COLLECTOR_MAX_EXPOSURE}"
    );

    // `verify` wants the ExecStart binaries to exist: the units are verified as they are, with
    // only /usr/bin/voqa-* pointed at this build's binaries. It exits 0 on warnings (an unknown
    // key, a misspelled system call group), so any output at all fails the test.
    let dir = tempfile::tempdir().expect("tmp");
    let bin_dir = PathBuf::from(env!("CARGO_BIN_EXE_voqa-agent"))
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let mut copies = Vec::new();
    for name in ["voqa-agent", "voqa-collector"] {
        let unit = std::fs::read_to_string(units.join(format!("{name}.service"))).expect("unit");
        let bin = bin_dir.join(name);
        if !bin.is_file() {
            // `cargo test -p voqa-agent` builds only the agent's binary.
            ok(Command::new(env!("CARGO"))
                .args(["build", "--locked", "-p", name, "--bin", name])
                .current_dir(&root));
        }
        let copy = dir.path().join(format!("{name}.service"));
        std::fs::write(
            &copy,
            unit.replace(&format!("/usr/bin/{name}"), &bin.display().to_string()),
        )
        .expect("write unit");
        copies.push(copy);
    }
    let out = run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&copies));
    assert!(
        out.status.success() && out.stderr.is_empty() && out.stdout.is_empty(),
        "systemd-analyze verify: {}\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );

    // What the issue asks of each unit, beyond the exposure figure.
    let agent = std::fs::read_to_string(units.join("voqa-agent.service")).expect("unit");
    let collector = std::fs::read_to_string(units.join("voqa-collector.service")).expect("unit");
    for (name, unit) in [("agent", &agent), ("collector", &collector)] {
        for line in [
            "Type=notify",
            "User=voqa",
            "Restart=on-failure",
            "UMask=0077",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "MemoryDenyWriteExecute=yes",
            "SystemCallFilter=@system-service",
            "SystemCallArchitectures=native",
            "ExecReload=/bin/kill -HUP $MAINPID",
        ] {
            assert!(
                unit.lines().any(|l| l == line),
                "voqa-{name}.service lacks {line}"
            );
        }
        assert!(
            unit.lines().any(|l| l.starts_with("WatchdogSec=")),
            "voqa-{name}.service has no watchdog"
        );
    }
    assert!(
        agent
            .lines()
            .any(|l| l == "AmbientCapabilities=CAP_NET_RAW")
    );
    assert!(
        agent
            .lines()
            .any(|l| l == "CapabilityBoundingSet=CAP_NET_RAW")
    );
    assert!(
        agent
            .lines()
            .any(|l| l == "RestrictAddressFamilies=AF_PACKET AF_INET AF_INET6 AF_UNIX AF_NETLINK")
    );
    assert!(collector.lines().any(|l| l == "CapabilityBoundingSet="));
    assert!(collector.lines().any(|l| l == "AmbientCapabilities="));
    assert!(
        agent.contains("ExecCondition=/usr/bin/voqa-agent check-config --configured"),
        "the agent starts only once configured"
    );
}

// ---------------------------------------------------------------------------------------------
// Packages

/// Both packages, built once (debug binaries: `build-deb.sh --profile dev`) for the tests that
/// need them; `Err` carries why they could not be built on this machine.
fn packages() -> Result<&'static (PathBuf, PathBuf), String> {
    static BUILT: OnceLock<Result<(PathBuf, PathBuf), String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo_deb = Command::new("cargo")
                .args(["deb", "--version"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !cargo_deb {
                return Err("cargo-deb not installed (cargo install cargo-deb --locked)".into());
            }
            if !have("dpkg-deb", "--version") {
                return Err("dpkg-deb not installed".into());
            }
            let root = workspace();
            let out = run(Command::new(root.join("packaging/build-deb.sh"))
                .args(["--profile", "dev"])
                .current_dir(&root));
            assert!(
                out.status.success(),
                "build-deb.sh: {}\n{}{}",
                out.status,
                text(&out.stdout),
                text(&out.stderr)
            );
            let version = env!("CARGO_PKG_VERSION");
            let deb = |name: &str| root.join(format!("target/debian/{name}_{version}-1_amd64.deb"));
            Ok((deb("voqa-agent"), deb("voqa-collector")))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// `dpkg-deb -c`: path (without the leading `.`) → (mode string, owner/group).
fn contents(deb: &Path) -> std::collections::BTreeMap<String, (String, String)> {
    ok(Command::new("dpkg-deb").arg("-c").arg(deb))
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let path = f.get(5)?.trim_start_matches('.').to_string();
            Some((path, (f[0].to_string(), f[1].to_string())))
        })
        .collect()
}

fn control_file(deb: &Path, name: &str) -> String {
    ok(Command::new("dpkg-deb").arg("-I").arg(deb).arg(name))
}

fn field(deb: &Path, name: &str) -> String {
    ok(Command::new("dpkg-deb").arg("-f").arg(deb).arg(name))
        .trim()
        .to_string()
}

/// What each package must hold: binary, config, unit, sysusers, man pages of every visible
/// subcommand, completions for three shells.
fn expected_files(name: &str, pages: &[&str]) -> Vec<(String, &'static str)> {
    let mut files = vec![
        (format!("/usr/bin/{name}"), "-rwxr-xr-x"),
        (
            format!("/etc/voqa/{}.toml", name.trim_start_matches("voqa-")),
            "-rw-r--r--",
        ),
        (
            format!("/usr/lib/systemd/system/{name}.service"),
            "-rw-r--r--",
        ),
        (format!("/usr/lib/sysusers.d/{name}.conf"), "-rw-r--r--"),
        (
            format!("/usr/share/bash-completion/completions/{name}"),
            "-rw-r--r--",
        ),
        (
            format!("/usr/share/zsh/vendor-completions/_{name}"),
            "-rw-r--r--",
        ),
        (
            format!("/usr/share/fish/vendor_completions.d/{name}.fish"),
            "-rw-r--r--",
        ),
        (format!("/usr/share/doc/{name}/copyright"), "-rw-r--r--"),
    ];
    for page in pages {
        files.push((format!("/usr/share/man/man1/{page}.1.gz"), "-rw-r--r--"));
    }
    if name == "voqa-collector" {
        for unit in [
            "voqa-collector-backup.service",
            "voqa-collector-backup.timer",
        ] {
            files.push((format!("/usr/lib/systemd/system/{unit}"), "-rw-r--r--"));
        }
    }
    files
}

fn packages_hold_the_right_files_modes_conffiles_and_scripts() {
    let (agent, collector) = match packages() {
        Ok(p) => p,
        Err(reason) => {
            support::harness::skip(REQUIRE, &reason);
            return;
        }
    };
    let root = workspace();
    let agent_pages = [
        "voqa-agent",
        "voqa-agent-analyze",
        "voqa-agent-run",
        "voqa-agent-replay",
        "voqa-agent-check-config",
    ];
    let collector_pages = [
        "voqa-collector",
        "voqa-collector-serve",
        "voqa-collector-token",
        "voqa-collector-token-create",
        "voqa-collector-token-list",
        "voqa-collector-token-revoke",
        "voqa-collector-check-config",
    ];
    for (deb, name, pages) in [
        (agent, "voqa-agent", &agent_pages[..]),
        (collector, "voqa-collector", &collector_pages[..]),
    ] {
        let files = contents(deb);
        for (path, mode) in expected_files(name, pages) {
            let got = files
                .get(&path)
                .unwrap_or_else(|| panic!("{name}: {path} missing; contents: {files:#?}"));
            assert_eq!(got.0, mode, "{name}: mode of {path}");
            assert_eq!(got.1, "0/0", "{name}: owner of {path} (root)");
        }
        // Nothing of the other package, nor the generator's hidden pages.
        let other = if name == "voqa-agent" {
            "voqa-collector"
        } else {
            "voqa-agent"
        };
        assert!(
            files.keys().all(|p| !p.contains(other)),
            "{name} ships files of {other}"
        );
        assert!(
            files.keys().all(|p| !p.contains("generate-manual")),
            "{name}: the hidden generate-manual command got a page"
        );

        // Only /etc is configuration, and all of it is a conffile.
        let conffiles = control_file(deb, "conffiles");
        let config = format!("/etc/voqa/{}.toml", name.trim_start_matches("voqa-"));
        assert_eq!(conffiles.trim(), config, "{name}: conffiles");

        // Dependencies: libc and systemd-sysusers (the user), nothing else; no OpenSSL.
        let depends = field(deb, "Depends");
        let mut deps: Vec<&str> = depends.split(", ").collect();
        deps.sort();
        assert_eq!(deps.len(), 2, "{name}: Depends: {depends}");
        assert!(
            deps[0].starts_with("libc6 (>= "),
            "{name}: Depends: {depends}"
        );
        assert_eq!(
            deps[1], "systemd | systemd-standalone-sysusers | systemd-sysusers",
            "{name}: Depends: {depends}"
        );
        assert!(!depends.contains("ssl"), "{name}: Depends: {depends}");

        // Maintainer scripts: the user created by sysusers with this package's file, the unit
        // enabled; started by the generated part for the collector only.
        let postinst = control_file(deb, "postinst");
        assert!(
            postinst.contains(&format!(
                "systemd-sysusers ${{DPKG_ROOT:+--root=\"$DPKG_ROOT\"}} {name}.conf"
            )),
            "{name}: postinst does not create the user:\n{postinst}"
        );
        assert!(
            postinst.contains(&format!("deb-systemd-helper enable {name}.service")),
            "{name}: postinst does not enable the unit:\n{postinst}"
        );
        assert!(
            postinst.contains(&format!(
                "install -d -o voqa -g voqa -m 0700 /var/lib/{name}"
            )),
            "{name}: postinst does not create the state directory:\n{postinst}"
        );
        // debhelper's snippet: start on install, restart on upgrade.
        // cargo-deb starts all of a package's units in one line (the collector's backup
        // service and timer with it).
        let generated_start = postinst.contains("_dh_action=start")
            && postinst.lines().any(|l| {
                l.trim_start().starts_with("deb-systemd-invoke $_dh_action")
                    && l.contains(&format!(" {name}.service"))
            });
        if name == "voqa-agent" {
            assert!(
                postinst.contains(
                    "if /usr/bin/voqa-agent check-config --configured --config /etc/voqa/agent.toml"
                ),
                "agent postinst: the start is conditional:\n{postinst}"
            );
            assert!(
                !generated_start && !postinst.contains("deb-systemd-invoke start voqa-agent"),
                "agent postinst starts it unconditionally:\n{postinst}"
            );
            let prerm = control_file(deb, "prerm");
            assert!(
                prerm.contains("deb-systemd-invoke stop voqa-agent.service"),
                "agent prerm does not stop it:\n{prerm}"
            );
        } else {
            assert!(
                generated_start,
                "collector postinst does not start it:\n{postinst}"
            );
            // The daily backup's timer is enabled with the collector.
            assert!(
                postinst.contains("deb-systemd-helper enable voqa-collector-backup.timer"),
                "collector postinst does not enable the backup timer:\n{postinst}"
            );
        }

        // Unpacked: the files are the repository's (unit, config, sysusers), the binary runs,
        // the man pages are roff with the examples.
        let scratch = tempfile::tempdir().expect("tmp");
        let r = scratch.path();
        ok(Command::new("dpkg-deb").arg("-x").arg(deb).arg(r));
        let same = |installed: &str, source: &str| {
            assert_eq!(
                std::fs::read(r.join(installed.trim_start_matches('/'))).expect("installed"),
                std::fs::read(root.join(source)).expect("source"),
                "{name}: {installed} differs from {source}"
            );
        };
        same(
            &format!("/usr/lib/systemd/system/{name}.service"),
            &format!("packaging/systemd/{name}.service"),
        );
        same(
            &config,
            &format!("packaging/{}.toml", name.trim_start_matches("voqa-")),
        );
        same(
            &format!("/usr/lib/sysusers.d/{name}.conf"),
            &format!("packaging/sysusers/{name}.conf"),
        );
        let version = ok(Command::new(r.join(format!("usr/bin/{name}"))).arg("--version"));
        assert_eq!(
            version.trim(),
            format!("{name} {}", env!("CARGO_PKG_VERSION"))
        );
        let help = ok(Command::new(r.join(format!("usr/bin/{name}"))).arg("--help"));
        assert!(help.contains("Examples:"), "{name} --help:\n{help}");
        for page in pages {
            let path = r.join(format!("usr/share/man/man1/{page}.1.gz"));
            let roff = ok(Command::new("gzip").arg("-dc").arg(&path));
            assert!(
                roff.contains(&format!(
                    ".TH {page} 1  \"{page} {}\"",
                    env!("CARGO_PKG_VERSION")
                )),
                "{page}: no title line:\n{roff}"
            );
            assert!(roff.contains(".SH SYNOPSIS"), "{page}:\n{roff}");
        }
        let top = ok(Command::new("gzip")
            .arg("-dc")
            .arg(r.join(format!("usr/share/man/man1/{name}.1.gz"))));
        assert!(
            top.contains("Examples:"),
            "{name}(1) has no examples:\n{top}"
        );
    }
    // One user, described once: both sysusers files declare the same line.
    let user_line = |f: &str| {
        std::fs::read_to_string(root.join("packaging/sysusers").join(f))
            .expect("sysusers")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        user_line("voqa-agent.conf"),
        user_line("voqa-collector.conf")
    );
    assert_eq!(
        user_line("voqa-agent.conf"),
        ["u voqa - \"voqa VoIP quality monitor\" /nonexistent /usr/sbin/nologin"]
    );
}

// ---------------------------------------------------------------------------------------------
// Installation into a Debian root

/// Mounts made for the chroot, unmounted (innermost first) when dropped, also on panic.
struct Mounts(Vec<PathBuf>);

impl Mounts {
    fn mount(&mut self, args: &[&str], target: &Path) {
        ok(Command::new("mount").args(args).arg(target));
        self.0.push(target.to_path_buf());
    }
}

impl Drop for Mounts {
    fn drop(&mut self) {
        for target in self.0.iter().rev() {
            let done = Command::new("umount").arg(target).status();
            if !done.is_ok_and(|s| s.success()) {
                let _ = Command::new("umount").arg("-l").arg(target).status();
            }
        }
    }
}

fn chroot_command(root: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("chroot");
    cmd.arg(root)
        .args(args)
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("DEBIAN_FRONTEND", "noninteractive");
    cmd
}

fn chroot(root: &Path, args: &[&str]) -> Output {
    run(&mut chroot_command(root, args))
}

fn chroot_ok(root: &Path, args: &[&str]) -> String {
    ok(&mut chroot_command(root, args))
}

/// (uid, gid, mode) of a path inside the root.
fn owner_mode(path: &Path) -> (u32, u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

fn packages_install_into_a_debian_root_and_check_their_configs() {
    let base = match std::env::var_os("VOQA_DEBIAN_ROOT") {
        Some(dir) => PathBuf::from(dir),
        None => {
            support::harness::skip(
                REQUIRE,
                "no Debian root: set VOQA_DEBIAN_ROOT to a `debootstrap --variant=minbase \
                 --include=systemd-standalone-sysusers bookworm DIR` root",
            );
            return;
        }
    };
    if !is_root() {
        support::harness::skip(REQUIRE, "needs root (chroot, mount)");
        return;
    }
    assert!(
        base.join("usr/bin/dpkg").is_file() && base.join("usr/bin/systemd-sysusers").is_file(),
        "{} is not a Debian root with systemd-sysusers",
        base.display()
    );
    let (agent, collector) = match packages() {
        Ok(p) => p,
        Err(reason) => {
            support::harness::skip(REQUIRE, &reason);
            return;
        }
    };

    // A writable layer over the Debian root, thrown away at the end.
    let scratch = tempfile::tempdir().expect("tmp");
    let (upper, work, root) = (
        scratch.path().join("upper"),
        scratch.path().join("work"),
        scratch.path().join("root"),
    );
    for d in [&upper, &work, &root] {
        std::fs::create_dir(d).expect("mkdir");
    }
    let mut mounts = Mounts(Vec::new());
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        base.display(),
        upper.display(),
        work.display()
    );
    mounts.mount(&["-t", "overlay", "overlay", "-o", &options], &root);
    for deb in [agent, collector] {
        std::fs::copy(deb, root.join("tmp").join(deb.file_name().expect("name"))).expect("copy");
    }
    let name = |deb: &PathBuf| format!("/tmp/{}", deb.file_name().expect("name").to_string_lossy());
    let (agent_deb, collector_deb) = (name(agent), name(collector));

    // Install both: the maintainer scripts run.
    let installed = chroot_ok(&root, &["dpkg", "-i", &agent_deb, &collector_deb]);
    assert!(
        installed.contains("voqa-agent is installed and enabled, but not started")
            && installed.contains("interfaces = [\"eth0\"]"),
        "the agent's postinst says what to edit:\n{installed}"
    );

    // The user, its directories with their owners and modes, the enabled units.
    let passwd = chroot_ok(&root, &["getent", "passwd", "voqa"]);
    let fields: Vec<&str> = passwd.trim().split(':').collect();
    assert_eq!(fields.len(), 7, "{passwd}");
    let uid: u32 = fields[2].parse().expect("uid");
    let gid: u32 = fields[3].parse().expect("gid");
    assert!(uid < 1000 && uid > 0, "a system user: {passwd}");
    assert_eq!(fields[6], "/usr/sbin/nologin", "{passwd}");
    for dir in ["var/lib/voqa-agent", "var/lib/voqa-collector"] {
        assert_eq!(owner_mode(&root.join(dir)), (uid, gid, 0o700), "{dir}");
    }
    assert_eq!(owner_mode(&root.join("etc/voqa/agent.toml")), (0, 0, 0o644));
    assert_eq!(owner_mode(&root.join("usr/bin/voqa-agent")), (0, 0, 0o755));
    for unit in ["voqa-agent.service", "voqa-collector.service"] {
        let link = root
            .join("etc/systemd/system/multi-user.target.wants")
            .join(unit);
        let target = std::fs::read_link(&link)
            .unwrap_or_else(|e| panic!("{unit} not enabled ({}): {e}", link.display()));
        assert!(target.ends_with(unit), "{unit} -> {}", target.display());
    }

    // The collector's packaged configuration works as installed, for the service user: the
    // store is created in its state directory, readable by voqa alone.
    let checked = chroot_ok(
        &root,
        &[
            "runuser",
            "-u",
            "voqa",
            "--",
            "/usr/bin/voqa-collector",
            "--config",
            "/etc/voqa/collector.toml",
            "check-config",
        ],
    );
    assert!(
        checked.contains("ok   store sqlite:/var/lib/voqa-collector/voqa.db reachable"),
        "{checked}"
    );
    assert_eq!(
        owner_mode(&root.join("var/lib/voqa-collector/voqa.db")),
        (uid, gid, 0o600)
    );

    // The agent as installed is not configured (the unit's condition and the postinst agree);
    // edited, it is, and it checks out as voqa with CAP_NET_RAW only, as the unit runs it.
    let unedited = chroot(
        &root,
        &["/usr/bin/voqa-agent", "check-config", "--configured"],
    );
    assert_eq!(
        unedited.status.code(),
        Some(1),
        "{}",
        text(&unedited.stdout)
    );
    assert!(text(&unedited.stdout).starts_with("not configured: /etc/voqa/agent.toml"));
    let config = root.join("etc/voqa/agent.toml");
    let packaged = std::fs::read_to_string(&config).expect("config");
    let edited = packaged
        .replace("interfaces = []  ", "interfaces = [\"lo\"]")
        .replace(
            "sink = \"stdout\"  ",
            "sink = \"file:/var/lib/voqa-agent/reports.jsonl\"",
        )
        // No port on the host's loopback in a test.
        .replace("listen = \"127.0.0.1:9477\"", "listen = \"\"");
    assert_ne!(edited, packaged);
    let edited = format!("{edited}# edited by the test\n");
    std::fs::write(&config, &edited).expect("edit config");
    let configured = chroot_ok(
        &root,
        &["/usr/bin/voqa-agent", "check-config", "--configured"],
    );
    assert!(
        configured.starts_with("ok   /etc/voqa/agent.toml"),
        "{configured}"
    );
    mounts.mount(&["-t", "proc", "proc"], &root.join("proc"));
    mounts.mount(&["-t", "sysfs", "sysfs"], &root.join("sys"));
    let as_service = chroot_ok(
        &root,
        &[
            "setpriv",
            "--reuid=voqa",
            "--regid=voqa",
            "--init-groups",
            "--inh-caps=-all,+net_raw",
            "--ambient-caps=+net_raw",
            "--bounding-set=-all,+net_raw",
            "/usr/bin/voqa-agent",
            "check-config",
        ],
    );
    for line in [
        "ok   CAP_NET_RAW is available",
        "ok   lo: capture ring opens",
        "ok   output.sink: /var/lib/voqa-agent/reports.jsonl is writable",
    ] {
        assert!(as_service.contains(line), "{line}:\n{as_service}");
    }

    // Reinstalling keeps the edited configuration (conffile).
    chroot_ok(&root, &["dpkg", "-i", &agent_deb]);
    assert_eq!(
        std::fs::read_to_string(&config).expect("config"),
        edited,
        "dpkg overwrote the edited /etc/voqa/agent.toml"
    );

    // Purge: the agent's spool goes; the collector's store stays after its purge.
    chroot_ok(&root, &["dpkg", "--purge", "voqa-agent"]);
    assert!(
        !root.join("var/lib/voqa-agent").exists(),
        "spool left after purge"
    );
    assert!(!root.join("usr/bin/voqa-agent").exists());
    let purged = chroot(&root, &["dpkg", "--purge", "voqa-collector"]);
    assert!(purged.status.success(), "{}", text(&purged.stderr));
    assert!(
        root.join("var/lib/voqa-collector/voqa.db").is_file(),
        "the collector's store must survive a purge"
    );
    assert!(
        text(&purged.stderr).contains("the store in /var/lib/voqa-collector is kept"),
        "{}",
        text(&purged.stderr)
    );
    drop(mounts);
}
