//! voqa-collector: receives agent reports and checks them against customer commitments.
//!
//! Only the version is implemented so far; ingest, storage and the API follow (see the README's roadmap).

fn main() {
    let arg = std::env::args().nth(1);
    match arg.as_deref() {
        None | Some("--version") | Some("-V") | Some("version") => {
            println!(
                "voqa-collector {} (wire schema {})",
                env!("CARGO_PKG_VERSION"),
                voqa_wire::SCHEMA_VERSION
            );
        }
        Some(other) => {
            eprintln!(
                "voqa-collector: '{other}' is not implemented yet; only --version is available in this release"
            );
            std::process::exit(2);
        }
    }
}
