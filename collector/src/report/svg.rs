//! Placeholder: filled in by the issue-11 work (see mod.rs).
