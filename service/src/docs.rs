//! The manual generated from a binary's clap definition, written at package build time by the
//! binary's hidden `generate-manual DIR` command: a man page for the command and for each of
//! its visible subcommands (`voqa-agent.1`, `voqa-agent-run.1`, `voqa-collector-token-create.1`
//! ...) in `DIR/man/`, and bash, zsh and fish completions in `DIR/completions/`.
//!
//! Only files in the directory it is given; it must not install anything (the package's asset
//! list says where each file goes) and must not be run on every build (no build script).

use std::path::{Path, PathBuf};

use clap_complete::Shell;

/// Why the manual could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DocsError {
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DocsError + '_ {
    move |error| DocsError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Writes the man pages and completions of `cmd` under `out`; returns the files written.
pub fn write_manual(mut cmd: clap::Command, out: &Path) -> Result<Vec<PathBuf>, DocsError> {
    cmd.build();
    let man_dir = out.join("man");
    let completions_dir = out.join("completions");
    for dir in [&man_dir, &completions_dir] {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let mut written = Vec::new();
    let bin = cmd.get_name().to_string();
    let version = cmd.get_version().unwrap_or_default().to_string();
    let page = Page {
        name: bin.clone(),
        usage: bin.clone(),
        version: &version,
    };
    write_pages(&cmd, page, &man_dir, &mut written)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let path = clap_complete::generate_to(shell, &mut cmd, &bin, &completions_dir)
            .map_err(io(&completions_dir))?;
        written.push(path);
    }
    Ok(written)
}

/// What a man page is called, how its command is typed, and the version it documents.
struct Page<'a> {
    /// `voqa-agent-run`: the page's name (`man voqa-agent-run`).
    name: String,
    /// `voqa-agent run`: the command as typed, in the synopsis.
    usage: String,
    version: &'a str,
}

/// The page of `cmd`, then those of its visible subcommands, recursively.
fn write_pages(
    cmd: &clap::Command,
    page: Page<'_>,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<(), DocsError> {
    let path = dir.join(format!("{}.1", page.name));
    let command = cmd
        .clone()
        .name(page.name.clone())
        .bin_name(page.usage.clone())
        .version(page.version.to_string());
    let mut text = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut text)
        .map_err(io(&path))?;
    std::fs::write(&path, text).map_err(io(&path))?;
    written.push(path);
    // clap's own `help` subcommand gets no page: every page already documents its options.
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let sub_page = Page {
            name: format!("{}-{}", page.name, sub.get_name()),
            usage: format!("{} {}", page.usage, sub.get_name()),
            version: page.version,
        };
        write_pages(sub, sub_page, dir, written)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_for_visible_subcommands_and_three_shells() {
        let cmd = clap::Command::new("voqa-test")
            .version("1.2.3")
            .about("A test command")
            .after_help("Examples:\n  voqa-test run --fast")
            .subcommand(
                clap::Command::new("run").about("Runs it").arg(
                    clap::Arg::new("fast")
                        .long("fast")
                        .action(clap::ArgAction::SetTrue),
                ),
            )
            .subcommand(clap::Command::new("secret").hide(true));
        let dir = std::env::temp_dir().join(format!("voqa-docs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut written = write_manual(cmd, &dir).expect("manual");
        written.sort();
        let names: Vec<String> = written
            .iter()
            .map(|p| {
                p.strip_prefix(&dir)
                    .expect("under dir")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(
            names,
            [
                "completions/_voqa-test",
                "completions/voqa-test.bash",
                "completions/voqa-test.fish",
                "man/voqa-test-run.1",
                "man/voqa-test.1",
            ]
        );
        let run = std::fs::read_to_string(dir.join("man/voqa-test-run.1")).expect("page");
        assert!(run.starts_with(".ie \\n(.g .ds Aq"), "roff: {run}");
        assert!(
            run.contains(".TH voqa-test-run 1  \"voqa-test-run 1.2.3\""),
            "{run}"
        );
        assert!(
            run.contains("\\fBvoqa\\-test run\\fR"),
            "typed as a subcommand: {run}"
        );
        assert!(run.contains("\\-\\-fast"), "{run}");
        let top = std::fs::read_to_string(dir.join("man/voqa-test.1")).expect("page");
        assert!(
            top.contains("voqa\\-test run \\-\\-fast"),
            "after_help kept: {top}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
