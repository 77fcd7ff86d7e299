#!/usr/bin/env bash
# Builds the voqa-agent and voqa-collector Debian packages into target/debian/.
#
#   packaging/build-deb.sh                 release build (what to install)
#   packaging/build-deb.sh --profile dev   debug binaries (tests/packaging.rs: no 8-minute
#                                          release build just to check the packaging)
#
# Steps: build the two binaries (only them), write each one's man pages and shell completions
# with its hidden `generate-manual` command into target/manual/ (gzipped pages), then
# `cargo deb --no-build` per package. Needs cargo-deb (`cargo install cargo-deb --locked`).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile="${2:?--profile needs a value}"; shift 2 ;;
    --profile=*) profile="${1#--profile=}"; shift ;;
    *) echo "usage: $0 [--profile release|dev]" >&2; exit 2 ;;
  esac
done
# A test package of debug binaries is compressed fast (xz of 40 MB of debug binaries takes a
# minute); cargo-deb warns that `dev` is meant for testing only, which is what it is for here.
deb_args=()
case "$profile" in
  dev) out_dir=debug; deb_args+=(--fast) ;;
  *) out_dir="$profile" ;;
esac

if ! cargo deb --version >/dev/null 2>&1; then
  echo "cargo-deb is missing: cargo install cargo-deb --locked" >&2
  exit 2
fi

target="${CARGO_TARGET_DIR:-target}"
cargo build --locked --profile "$profile" -p voqa-agent -p voqa-collector --bin voqa-agent --bin voqa-collector

for bin in voqa-agent voqa-collector; do
  manual="target/manual/$bin"
  rm -rf "$manual"
  "$target/$out_dir/$bin" generate-manual "$manual" >/dev/null
  gzip -9n "$manual"/man/*.1
done

mkdir -p target/debian
for pkg in voqa-agent voqa-collector; do
  cargo deb --locked --no-build --profile "$profile" "${deb_args[@]}" -p "$pkg" -o target/debian/
done
ls -l target/debian/*.deb
