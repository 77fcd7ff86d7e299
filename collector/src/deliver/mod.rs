//! Delivery of what the collector sends out on its own: alert notifications and monthly
//! customer reports. Transports only (`smtp`; `webhook`, the one signed-JSON POST that alert
//! webhooks and report webhooks share; Alertmanager's format lives with the alerts): they take
//! a finished message and a destination, bound every send in time and size, and return a typed
//! error. They decide nothing about what to send or when, and keep no state: retries and the
//! record of what was sent belong to their callers and the store.

pub mod smtp;
pub mod webhook;
