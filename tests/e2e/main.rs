//! End-to-end tests: the real `hookd` binary, driven over HTTP.

mod support;

mod breaker;
mod cli;
mod cluster;
mod console;
mod delivery;
mod durability;
mod entities;
mod event_hooks;
mod filters;
mod guests_new;
mod guests_run;
mod health;
mod hostile_body;
mod hostile_guests;
mod hostile_listener;
mod hostile_quarantine;
mod hostile_templates;
mod lambda;
mod lambda_reused;
mod operations;
mod per_hook;
mod published;
mod root;
mod secret_rotation;
mod sources;
mod validation;
