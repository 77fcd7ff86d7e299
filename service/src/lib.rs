//! What both voqa binaries need to run as installed system services, implemented once:
//! [`notify`], the systemd notification protocol (READY, STATUS, WATCHDOG); [`log`], the one
//! logging setup (journald-structured under systemd, plain lines otherwise); and [`docs`], the
//! manual generated from each binary's command-line definition (man pages, shell completions)
//! at package build time.
//!
//! Neither binary's logic belongs here: when a service is ready or healthy is decided by each
//! binary's own service code; this crate only speaks the protocols and writes the files.

pub mod docs;
pub mod log;
pub mod notify;
