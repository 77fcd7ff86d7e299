//! Alerting (issue 14): rules evaluated on a fixed cadence from the store's aggregates, their
//! states, and delivery. `config` is `[alerts]`; `burn` the error-budget burn rates (the
//! multiwindow method); `rules` each kind's judgement and `state` the state machine, both pure;
//! `notify` the webhook, Alertmanager and e-mail formats and sends; `engine` the task `serve`
//! runs, the only part that reads the clock (once per cycle, passing the time into the rest);
//! `batch` its reads of all customers at once. Only these two touch the store.

mod batch;
pub mod burn;
pub mod config;
pub mod engine;
pub mod notify;
pub mod rules;
pub mod state;
