//! End-to-end tests of the HTTP API, in-process, on the SQLite store and the local connector;
//! `multi_node` runs two nodes over PostgreSQL (skipped loudly when it is unreachable).

mod common;

mod audit;
mod auth_cache;
mod auth_flows;
mod authz_matrix;
mod bad_input;
mod canary;
mod console;
mod jwt_attacks;
mod matrix;
mod multi_node;
mod openapi_doc;
mod scope;
mod security;
mod ws;
